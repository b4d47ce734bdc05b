"""compare_runs: the table and the regression exit code."""

from __future__ import annotations

import copy
import io

from rich.console import Console

from harness.compare import compare_runs
from harness.store import RunData


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=250, color_system=None), buf


def _scaled(run: RunData, factor: float, cell_prefix: str | None = None) -> RunData:
    out = copy.deepcopy(run)
    for rec in out.records:
        if rec["status"] == "ok" and (cell_prefix is None or rec["cell_id"].startswith(cell_prefix)):
            steps = rec["payload"]["steps"]
            steps["step_time_s"] = [t * factor for t in steps["step_time_s"]]
    return out


def test_identical_runs_pass(current_run: RunData) -> None:
    console, buf = _console()
    assert compare_runs(current_run, current_run, 0.0, console) == 0
    text = buf.getvalue()
    assert "no significant difference" in text and "no cell regressed" in text


def test_regression_beyond_threshold_fails(current_run: RunData) -> None:
    slower = _scaled(current_run, 1.5, "tf2.21-py3.11-cpu/cnn_fit")
    console, buf = _console()
    assert compare_runs(current_run, slower, 10.0, console) == 1
    text = buf.getvalue()
    assert "REGRESSION" in text and "1 cell(s) regressed by more than 10%" in text
    assert "1.50\u00d7" in text


def test_regression_below_threshold_passes(current_run: RunData) -> None:
    slower = _scaled(current_run, 1.5, "tf2.21-py3.11-cpu/cnn_fit")
    console, _ = _console()
    assert compare_runs(current_run, slower, 60.0, console) == 0


def test_improvement_never_fails(current_run: RunData) -> None:
    faster = _scaled(current_run, 0.5)
    console, buf = _console()
    assert compare_runs(current_run, faster, 0.0, console) == 0
    assert "faster than A" in buf.getvalue()


def test_no_threshold_is_informational(current_run: RunData) -> None:
    slower = _scaled(current_run, 3.0)
    console, buf = _console()
    assert compare_runs(current_run, slower, None, console) == 0
    assert "slower than A" in buf.getvalue()


def test_unmatched_cells_reported(current_run: RunData, earlier_run: RunData) -> None:
    console, buf = _console()
    compare_runs(earlier_run, current_run, None, console)
    assert "not compared" not in buf.getvalue()  # earlier run's cells all exist in current
    console, buf = _console()
    partial = copy.deepcopy(current_run)
    partial.records = [r for r in partial.records if "cnn_fit" not in r["cell_id"]]
    compare_runs(current_run, partial, None, console)
    assert "not compared: 2 cell(s) measured only in A" in buf.getvalue()
