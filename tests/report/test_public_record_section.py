"""The report's "The public record" section, from the public-record fixture run (tiny_fit, call_overhead and
mlp_loop cells on TF 2.15, TF 2.21 and TF 2.21 with Keras 2, made through the real session with the fake
backend): every claim gets a row; rows the run speaks to show their measured ratios and verdicts, the others
say why not; the figures shown are the stored analysis's; hostile claim text is escaped; Chromium renders it."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path

import pytest
from rich.table import Table
from rich.text import Text

from harness.analysis import stored
from harness.analysis.publicclaims import packaged_claims
from harness.report import html as report
from harness.report.console import public_record_table
from harness.results.store import RunData, load_run
from tests.fixtures import make_public_record_fixture as fixture
from tests.report.chromium import CHROMIUM, console_errors, run_chromium

RUN_DIR = fixture.RUNS_DIR / fixture.SPEC.run_id


@pytest.fixture(scope="module")
def run() -> RunData:
    return load_run(RUN_DIR)


def _section(page: str) -> str:
    start = page.index('<h2 id="public-record">')
    return page[start : page.index("<h2", start + 10)]


def test_committed_fixture_is_what_the_generator_writes(tmp_path: Path) -> None:
    fresh = fixture.record(tmp_path / "public_record")
    for path in sorted(p for p in fresh.rglob("*") if p.is_file()):
        committed = RUN_DIR / path.relative_to(fresh)
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), path.name


def test_fixture_has_the_keras_2_image_and_every_overhead_workload(run: RunData) -> None:
    keras = {
        (r["cell"]["image"], r["payload"]["runtime"]["keras_package"])
        for r in run.records
        if r["status"] == "ok"
    }
    assert keras == {
        ("tf2.15-py3.11", "keras"),
        ("tf2.21-py3.11", "keras"),
        ("tf2.21-py3.11-keras2", "tf_keras"),
    }
    assert {r["cell"]["workload"] for r in run.records if r["status"] == "ok"} == {
        "tiny_fit",
        "call_overhead",
        "mlp_loop",
    }


def test_every_claim_has_a_row_with_its_stored_figures(run: RunData) -> None:
    doc = stored.load(run)
    section = _section(report.render_run_html(run))
    assert [c.id for c in doc.public_record] == [c.id for c in packaged_claims()]
    spoken = [c for c in doc.public_record if c.measurements]
    silent = [c for c in doc.public_record if not c.measurements]
    assert spoken and silent  # the fixture has both kinds
    for claim in doc.public_record:
        row = section[section.index(f'id="claim-{claim.id}"') :]
        row = row[: row.index("</tr>")]
        assert html.escape(claim.title, quote=True) in row
        assert f'class="pr-verdict pr-{claim.verdict.replace(" ", "-")}"' in row
        for source in claim.sources:
            assert f'title="{source["url"]}">{source["ref"]}<' in row
        if claim.measurements:
            for m in claim.measurements:
                assert (
                    f"{m.ratio:.2f}\u00d7" in row
                    and f"[{m.ratio_lo:.2f}\u00d7, {m.ratio_hi:.2f}\u00d7]" in row
                )
                assert m.verdict in row
        else:
            assert claim.verdict == "cannot speak to"
            assert html.escape(claim.reason or "", quote=True) in row


def test_tf1_claims_cannot_be_spoken_to_without_a_tf1_run(run: RunData) -> None:
    doc = stored.load(run)
    compat = next(c for c in doc.public_record if c.id == "compat-v1-is-not-1.15")
    assert compat.verdict == "cannot speak to" and compat.reason and "tf1.15-gpu" in compat.reason


def test_hostile_claim_text_is_escaped(tmp_path: Path) -> None:
    """A stored analysis whose claim text is hostile (the data file is data): rendered escaped."""
    copy = tmp_path / RUN_DIR.name
    shutil.copytree(RUN_DIR, copy)
    doc = json.loads((copy / "analysis.json").read_text(encoding="utf-8"))
    doc["public_record"][0]["title"] = "<script>alert(1)</script>"
    doc["public_record"][0]["sources"][0]["url"] = 'https://x.org/"><img src=x onerror=alert(2)>'
    (copy / "analysis.json").write_text(json.dumps(doc), encoding="utf-8")
    page = report.render_run_html(load_run(copy))
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x" in page


def test_terminal_table_lists_the_claims_spoken_to(run: RunData) -> None:
    doc = stored.load(run)
    table = public_record_table(doc)
    assert isinstance(table, Table)
    spoken = [c.id for c in doc.public_record if c.measurements]
    assert table.row_count == len(spoken)
    silent = len(doc.public_record) - len(spoken)
    assert re.search(rf"\({silent} claim", str(table.title))
    none_spoken = doc.model_copy(
        update={"public_record": [c.model_copy(update={"measurements": []}) for c in doc.public_record]}
    )
    line = public_record_table(none_spoken)
    assert isinstance(line, Text) and f"none of its {len(doc.public_record)} claims" in line.plain
    assert public_record_table(doc.model_copy(update={"public_record": []})) is None


@pytest.mark.chromium
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_section_renders_in_chromium(run: RunData, tmp_path: Path) -> None:
    page = report.render_run_report(run, tmp_path / "reports")
    proc = run_chromium(["--dump-dom", page.as_uri()], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_errors(proc.stderr) == []
    dom = proc.stdout
    assert 'id="public-record-table"' in dom and 'data-ready="1"' in dom
    doc = stored.load(run)
    assert dom.count('class="pr-row"') == len(doc.public_record)
    assert "same direction" in dom and "cannot speak to" in dom
