"""The timeline chart and the bisection section in real headless Chromium: the page loads without console
errors, its script initialises, and the SVG timeline (points, CI whiskers, memory bars, the Keras boundary)
and the probe table are in the rendered DOM."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.report import html as report
from harness.results.store import load_run
from tests.fixtures.planted import PlantedTimings
from tests.fixtures.release_runs import bisect_backend, record_bisect_run, record_timeline_run
from tests.report.chromium import CHROMIUM, check_page

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

pytestmark = [
    pytest.mark.chromium,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]


def test_timeline_chart_renders(tmp_path: Path) -> None:
    run = load_run(record_timeline_run(tmp_path / "timeline"))
    page = report.render_run_report(run, tmp_path / "reports")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dom = check_page(page, ARTIFACTS / "timeline.png")
    charts = re.findall(r'<svg[^>]*class="timeline-chart".*?</svg>', dom, re.S)
    assert len(charts) == 3
    for svg in charts:
        assert len(re.findall(r'<circle class="pt"', svg)) == 5
        assert len(re.findall(r'<path class="ci"', svg)) == 5
        assert len(re.findall(r'<rect class="mem"', svg)) == 5
        assert svg.count('class="keras-boundary"') == 1 and "Keras 2 | Keras 3" in svg
    table = dom[dom.index('id="timeline-table"') :]
    assert len(re.findall(r"<tr>", table[: table.index("</table>")])) == 1 + 12


def test_bisect_section_renders(tmp_path: Path) -> None:
    backend = bisect_backend(PlantedTimings(16, 1.3, 0.01, {}))
    run = load_run(record_bisect_run(tmp_path / "bisect", backend).path)
    page = report.render_run_report(run, tmp_path / "reports")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dom = check_page(page, ARTIFACTS / "bisect.png")
    assert "2.16 is the first release that regressed" in dom
    table = dom[dom.index('id="bisect-table"') :]
    assert len(re.findall(r"<tr>", table[: table.index("</table>")])) == 1 + 4
