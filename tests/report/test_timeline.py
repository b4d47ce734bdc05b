"""The timeline over TF releases (analysis and report section) and the bisection section, on runs the harness
makes with the fake backend (tests/fixtures/release_runs.py): planted step times must come out where they
were planted, the Keras 2 -> 3 boundary where docker/compat.yaml puts it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.analysis import stored
from harness.analysis.document import ANALYSIS_VERSION
from harness.report import html as report
from harness.results.store import RunData, load_run
from tests.fixtures.planted import PlantedTimings
from tests.fixtures.release_runs import (
    bisect_backend,
    record_bisect_run,
    record_matrix_profile_run,
    record_timeline_run,
)
from tests.snapshot import check_snapshot

SNAPSHOTS = Path(__file__).parent / "snapshots"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def timeline_run(tmp_path_factory: pytest.TempPathFactory) -> RunData:
    return load_run(record_timeline_run(tmp_path_factory.mktemp("timeline")))


@pytest.fixture(scope="module")
def bisect_run(tmp_path_factory: pytest.TempPathFactory) -> RunData:
    backend = bisect_backend(PlantedTimings(16, 1.3, 0.01, {}))
    return load_run(record_bisect_run(tmp_path_factory.mktemp("bisect"), backend).path)


def section(html: str, start: str, end: str) -> str:
    return html[html.index(start) : html.index(end)]


def test_the_timeline_has_one_series_per_cell_ordered_by_release(timeline_run: RunData) -> None:
    doc = stored.load(timeline_run)
    assert doc.schema_version == ANALYSIS_VERSION == 3
    assert [(s.workload, s.params_short) for s in doc.timeline] == [
        ("mlp_fit", "input=numpy"),
        ("mlp_fit", "input=tfdata"),
        ("mlp_loop", "batch_size=32"),
    ]
    for s in doc.timeline:
        assert [p.tf_minor for p in s.points] == ["2.13", "2.14", "2.15", "2.16", "2.21"]
        assert [p.keras for p in s.points] == [2, 2, 2, 3, 3]
        assert all(p.n_exec == 3 and p.ci_lo_s <= p.step_s <= p.ci_hi_s for p in s.points)
        assert [(c.a_tf, c.b_tf) for c in s.changes] == [
            ("2.13.0", "2.14.0"),
            ("2.14.0", "2.15.0"),
            ("2.15.0", "2.16.0"),
            ("2.16.0", "2.21.0"),
        ]
        assert [c.keras_boundary for c in s.changes] == [False, False, True, False]
    *fits, loop = doc.timeline
    for fit in fits:
        jump = fit.changes[2]
        assert jump.kind == "slower" and jump.ratio == pytest.approx(1.3, rel=0.03)
        assert jump.ratio_lo <= jump.ratio <= jump.ratio_hi
        assert "slower than tf2.15-py3.11" in jump.verdict
        steady = [*fit.changes[:2], fit.changes[3]]
        assert all(c.kind not in ("slower", "faster") for c in steady)
    assert all(c.kind not in ("slower", "faster") for c in loop.changes)


def test_no_timeline_below_three_releases(current_run: RunData) -> None:
    assert stored.load(current_run).timeline == []
    assert 'id="timeline"' not in report.render_run_html(current_run)


def test_timeline_section_snapshot(timeline_run: RunData) -> None:
    html = report.render_run_html(timeline_run)
    part = section(html, '<h2 id="timeline">', '<h2 id="host">')
    assert part.count('class="timeline-chart"') == 3 and part.count('class="keras-boundary"') == 3
    assert part.count('<circle class="pt"') == 15 and part.count('class="mem"') == 15
    assert "Keras 2 | Keras 3" in part and '<a href="#timeline">' in html
    rows = re.findall(r"<tr><td>(mlp_\w+) · ", part)
    assert rows[0] == "mlp_fit", "the largest change comes first"
    check_snapshot(SNAPSHOTS / "timeline_section.html", part)


def test_bisect_section_lists_every_probe(bisect_run: RunData) -> None:
    html = report.render_run_html(bisect_run)
    part = section(html, '<h2 id="bisect">', '<h2 id="verdict">')
    assert "<strong>found</strong>: 2.16 is the first release that regressed" in part
    rows = re.findall(r'<tr><td class="n">(\d+)</td><td>tf2\.(\d+)-py3\.11', part)
    assert rows == [("1", "21"), ("2", "16"), ("3", "14"), ("4", "15")]
    assert part.count("<strong>regressed</strong>") == 2 and part.count("<strong>not regressed</strong>") == 2
    assert "reused" in part and '<a href="#bisect">' in html


def test_the_repositorys_timeline_profile_gives_the_timeline_report(tmp_path: Path) -> None:
    """`make matrix PROFILE=timeline` without Docker: every TF minor 2.5-2.21, four series, the boundary
    between 2.15 and 2.16, the planted jump first in the table of changes."""
    timings = PlantedTimings(16, 1.3, 0.01, {}, only="mlp_fit")
    run = load_run(record_matrix_profile_run(tmp_path, ROOT / "matrix.yaml", "timeline", timings, 3))
    doc = stored.load(run)
    assert [(s.workload, s.params_short) for s in doc.timeline] == [
        ("mlp_fit", "input=numpy"),
        ("mlp_fit", "input=tfdata"),
        ("mlp_loop", "mode=function"),
        ("mlp_loop", "mode=graph"),
    ]
    for s in doc.timeline:
        assert [p.tf_minor for p in s.points] == [f"2.{m}" for m in range(5, 22)]
        assert [c.b_tf[:4] for c in s.changes if c.keras_boundary] == ["2.16"]
    html = report.render_run_html(run)
    part = section(html, '<h2 id="timeline">', '<h2 id="host">')
    assert part.count('class="timeline-chart"') == 4 and part.count('<circle class="pt"') == 4 * 17
    first = re.search(r"<tr><td>(mlp_\w+ · [^<]*)</td><td>(tf[\w.-]+)", part)
    assert first is not None and first.group(1).startswith("mlp_fit") and first.group(2) == "tf2.15-py3.11"
