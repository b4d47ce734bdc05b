"""The stored per-run analysis (`<run>/analysis.json`): its JSON round trip, the staleness rule, and that the
terminal summary and the HTML report show the same throughput because they read the same field."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from harness.analysis import stored as analysis_files
from harness.analysis.document import ANALYSIS_VERSION, AnalysisDoc
from harness.report import view as reportview
from harness.report.console import summary_table
from harness.report.html import render_run_html
from harness.report.htmlformat import fmt_num
from harness.results.store import RunData, load_run

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "runs"
RUN_DIRS = sorted(FIXTURES.iterdir())


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / run_dir.name
    shutil.copytree(run_dir, dst)
    return dst


def _strict(text: str) -> object:
    def refuse(name: str) -> object:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("run_dir", RUN_DIRS, ids=lambda p: p.name)
def test_fixture_analysis_is_stored_current_and_what_a_fresh_computation_gives(run_dir: Path) -> None:
    run = load_run(run_dir)
    stored = analysis_files.read_stored(run_dir)
    assert stored is not None and stored.inputs == analysis_files.inputs_of(run)
    assert analysis_files.compute(run).to_json() == stored.to_json()


def test_round_trips_through_strict_json() -> None:
    run = load_run(RUN_DIRS[-1])
    doc = analysis_files.compute(run)
    text = doc.to_json()
    raw = _strict(text)  # missing numbers are null, never NaN
    assert (
        isinstance(raw, dict) and raw["kind"] == "tfmh.analysis" and raw["schema_version"] == ANALYSIS_VERSION
    )
    back = AnalysisDoc.from_json(text)
    assert back.to_json() == text
    unmeasured = next(c for c in back.cells if not c.measured)
    assert math.isnan(unmeasured.step_s) and math.isnan(unmeasured.throughput)  # null reads back as NaN
    for cell_id, series in doc.series.items():  # the bootstrap is stored exactly (float64)
        assert back.series[cell_id].bootstrap == series.bootstrap
        assert back.series[cell_id].medians == series.medians
    assert {c.cell_id for c in back.cells if c.measured} == set(back.series)


def test_an_older_schema_version_is_recomputed_and_stored(tmp_path: Path) -> None:
    run_dir = _copy(RUN_DIRS[-1], tmp_path)
    path = analysis_files.analysis_path(run_dir)
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["schema_version"] = ANALYSIS_VERSION - 1
    raw["cells"] = []  # what an old reader would have left: must not be shown
    path.write_text(json.dumps(raw), encoding="utf-8")
    assert analysis_files.read_stored(run_dir) is None
    doc = analysis_files.refresh(load_run(run_dir))
    assert doc.schema_version == ANALYSIS_VERSION and doc.cells
    stored = analysis_files.read_stored(run_dir)
    assert stored is not None and stored.to_json() == doc.to_json()


def test_changed_records_make_the_tables_of_stale(tmp_path: Path) -> None:
    run_dir = _copy(RUN_DIRS[-1], tmp_path)
    before = analysis_files.read_stored(run_dir)
    assert before is not None
    cell = next(c for c in before.cells if c.measured)
    for rec_path in sorted((run_dir / "cells").glob("*.json")):
        rec = json.loads(rec_path.read_text(encoding="utf-8"))
        if rec["cell_id"] == cell.cell_id and rec["status"] == "ok":
            steps = rec["payload"]["steps"]
            steps["step_time_s"] = [2 * x for x in steps["step_time_s"]]  # the cell became twice as slow
            rec_path.write_text(json.dumps(rec), encoding="utf-8")
    run = load_run(run_dir)
    assert analysis_files.inputs_of(run) != before.inputs
    doc = analysis_files.load(run)  # recomputed in memory, the folder is left alone without `save`
    assert doc.cell(cell.cell_id).step_s == pytest.approx(2 * cell.step_s)  # type: ignore[union-attr]
    unchanged = analysis_files.read_stored(run_dir)
    assert unchanged is not None and unchanged.to_json() == before.to_json()
    analysis_files.refresh(run)
    stored = analysis_files.read_stored(run_dir)
    assert stored is not None and stored.inputs == analysis_files.inputs_of(run)


@pytest.mark.parametrize("content", ["{not json", '{"kind": "something.else", "schema_version": 1}', "[]"])
def test_unreadable_or_foreign_documents_are_recomputed(tmp_path: Path, content: str) -> None:
    run_dir = _copy(RUN_DIRS[-1], tmp_path)
    analysis_files.analysis_path(run_dir).write_text(content, encoding="utf-8")
    doc = analysis_files.refresh(load_run(run_dir))
    assert doc.cells and analysis_files.read_stored(run_dir) is not None


def test_a_folder_that_cannot_take_the_file_still_gets_its_analysis(tmp_path: Path) -> None:
    run_dir = _copy(RUN_DIRS[-1], tmp_path)
    path = analysis_files.analysis_path(run_dir)
    path.unlink()
    path.mkdir()  # neither readable nor replaceable as a file
    doc = analysis_files.refresh(load_run(run_dir))
    assert doc.cells and path.is_dir()
    assert not analysis_files.store(run_dir, doc)


def test_the_contended_view_is_recomputed_never_stored(tmp_path: Path) -> None:
    run_dir = _copy(RUN_DIRS[-1], tmp_path)
    before = analysis_files.analysis_path(run_dir).read_bytes()
    run = load_run(run_dir)
    both = analysis_files.load(run, include_contended=True, save=True)
    assert both.include_contended and both.inputs.include_contended
    assert analysis_files.analysis_path(run_dir).read_bytes() == before
    default = analysis_files.load(run)
    assert not default.include_contended
    contended = [c.cell_id for c in default.cells if c.n_contended]
    assert contended  # the fixture has a contended execution
    for cell_id in contended:
        assert both.cell(cell_id).n_used > default.cell(cell_id).n_used  # type: ignore[union-attr]


def _summary_throughputs(doc: AnalysisDoc) -> dict[str, str]:
    console = Console(record=True, width=200, color_system=None, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(summary_table(doc))
    rows = [line.split("\u2502") for line in console.export_text().splitlines() if line.count("\u2502") == 6]
    return {r[1].strip(): r[3].strip() for r in rows}


@pytest.mark.parametrize("run_dir", RUN_DIRS, ids=lambda p: p.name)
def test_summary_and_html_show_the_same_throughput(run_dir: Path) -> None:
    run: RunData = load_run(run_dir)
    shown = _summary_throughputs(analysis_files.load(run))
    cells = reportview.run_context(run)["cells"]
    html = render_run_html(run)
    measured = [c for c in cells if c.measured]
    assert measured
    for c in cells:
        if not c.measured:
            assert shown[c.cell_id] == "-"
            continue
        number, unit = shown[c.cell_id].split(" ")
        assert unit == c.rate_unit == "samples/s"
        terminal = float(number.replace(",", ""))
        assert terminal == pytest.approx(c.throughput, abs=0.5)  # the same number, rounded to a whole one
        assert f'<td class="n">{fmt_num(c.throughput, 4)} {c.rate_unit}<br>' in html
