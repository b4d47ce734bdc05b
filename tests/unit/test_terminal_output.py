"""Snapshot tests of the terminal exporters (run summary, plan table), like hyperfine's exporter tests."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from harness.analysis import stored as analysis_files
from harness.matrix.config import load_matrix
from harness.matrix.plan import expand
from harness.report.console import plan_table, summary_table
from harness.results.store import load_run
from tests.snapshot import check_snapshot

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "runs"


def _text(renderable: object, width: int = 150) -> str:
    console = Console(record=True, width=width, color_system=None, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def _check(name: str, text: str) -> None:
    check_snapshot(SNAPSHOTS / name, text)


def test_summary_table_snapshot() -> None:
    run = load_run(sorted(FIXTURES.iterdir())[-1])
    text = _text(summary_table(analysis_files.load(run)))
    assert "timeout" in text and "unavailable" in text
    _check("summary.txt", text)


def _samples_column(text: str) -> list[str]:
    cols = [line.split("\u2502") for line in text.splitlines() if line.count("\u2502") == 6]
    return [c[3].strip() for c in cols if c[3].strip() and c[3].strip() != "throughput"]


def test_summary_numbers_are_whole_on_a_narrow_terminal() -> None:
    """A narrow terminal (the newcomer's `make matrix` in an 80-column tty, with its longer cell ids, showed
    "1,6..."; the fixture's shorter ids are cut the same way at 60): cell ids fold, every throughput figure is
    printed in full, with its unit."""
    run = load_run(sorted(FIXTURES.iterdir())[-1])
    doc = analysis_files.load(run)
    wide = _samples_column(_text(summary_table(doc)))
    narrow = _samples_column(_text(summary_table(doc), width=60))
    assert any(v[0].isdigit() for v in wide) and "\u2026" not in "".join(narrow)
    assert all(v.endswith(" samples/s") for v in wide if v[0].isdigit())
    assert narrow == wide


def test_plan_table_snapshot(root: Path) -> None:
    cells = expand(load_matrix(root / "matrix.yaml"), "ci").cells
    text = _text(plan_table(cells, "profile ci"))
    assert "needs TF 2.x" in text
    _check("plan-ci.txt", text)
