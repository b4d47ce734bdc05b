"""A per-call workload (call_overhead) is labelled per call wherever a rate or step time is shown: calls/s in
the speed table and the terminal summary, "time per call" and "ms / call" on its speed chart."""

from __future__ import annotations

import os

from rich.console import Console

from harness.analysis import stored as analysis_files
from harness.report.console import summary_table
from harness.report.html import render_run_html
from harness.results.store import RunData


def _as_call_overhead(run: RunData, marker: str) -> RunData:
    """The run with the cells whose ID contains `marker` relabelled as call_overhead cells."""
    for rec in run.records:
        if marker in rec["cell_id"]:
            rec["cell"]["workload"] = "call_overhead"
    return run


def test_call_overhead_cells_are_labelled_per_call(fresh_current: RunData) -> None:
    run = _as_call_overhead(fresh_current, "/cnn_fit")
    doc = analysis_files.load(run)  # the changed records: recomputed
    relabelled = [c for c in doc.cells if c.workload == "call_overhead" and c.measured]
    others = [c for c in doc.cells if c.workload != "call_overhead" and c.measured]
    assert relabelled and others
    assert {c.rate_unit for c in relabelled} == {"calls/s"} and {c.rate_unit for c in others} == {"samples/s"}
    html = render_run_html(run)
    assert "call_overhead: steady-state time per call" in html and "ms / call" in html
    assert "mlp_fit: steady-state step time" in html
    assert html.count(" calls/s<br>") == len(relabelled)
    console = Console(record=True, width=200, color_system=None, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(summary_table(doc))
    lines = console.export_text().splitlines()
    for cell in relabelled:
        assert any(cell.cell_id in line and " calls/s" in line for line in lines), cell.cell_id
    for cell in others:
        assert any(cell.cell_id in line and " samples/s" in line for line in lines), cell.cell_id
