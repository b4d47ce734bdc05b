"""Terminal output: the plan table, live progress (cell, repeat, phase, ETA) and the end-of-run summary."""

from __future__ import annotations

import statistics
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from harness.plan import Cell
from harness.runner import Job, RunObserver

STATUS_STYLE = {"ok": "green", "failed": "red", "timeout": "red", "oom": "red", "unavailable": "yellow"}


def plan_table(cells: list[Cell], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("cell", no_wrap=True)
    table.add_column("TF")
    table.add_column("base")
    table.add_column("status", overflow="fold")
    for cell in cells:
        status = (
            Text("runnable", "green") if cell.available else Text(f"unavailable: {cell.reason}", "yellow")
        )
        table.add_row(cell.cell_id, cell.image.tf, cell.image.base.kind, status)
    return table


def _median_throughput(records: list[dict[str, Any]]) -> float | None:
    values = [
        r["payload"]["throughput_samples_per_s"]
        for r in records
        if r["status"] == "ok" and r.get("payload") and r["payload"].get("throughput_samples_per_s")
    ]
    return statistics.median(values) if values else None


def summary_table(records: list[dict[str, Any]]) -> Table:
    """One row per cell: statuses over repeats, median samples/s, and the reason for any non-ok repeat."""
    by_cell: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_cell.setdefault(record["cell_id"], []).append(record)
    table = Table(title="Run summary", title_justify="left")
    table.add_column("cell", no_wrap=True)
    table.add_column("status")
    table.add_column("samples/s (median)", justify="right")
    table.add_column("contended", justify="right")
    table.add_column("reason", overflow="fold")
    for cell_id in sorted(by_cell):
        recs = by_cell[cell_id]
        statuses = sorted({r["status"] for r in recs})
        status = Text(",".join(statuses), style=STATUS_STYLE.get(statuses[0], ""))
        used = [r for r in recs if not (r.get("contention") or {}).get("contended")]
        tput = _median_throughput(used)
        contended = len(recs) - len(used)
        reasons = sorted({r["reason"] for r in recs if r.get("reason")})
        table.add_row(
            Text(cell_id),
            status,
            f"{tput:,.0f}" if tput else "-",
            str(contended) if contended else "",
            Text("; ".join(reasons)[:200]),
        )
    return table


class ProgressObserver(RunObserver):
    """A rich progress bar with the current cell, repeat and phase, plus the elapsed time and ETA."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]{task.fields[phase]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[cell]}"),
            console=console,
            transient=False,
        )
        self.task: Any = None

    def __enter__(self) -> ProgressObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def phase(self, phase: str, cell: str = "") -> None:
        if self.task is None:
            self.task = self.progress.add_task("run", total=None, phase=phase, cell=cell)
        else:
            self.progress.update(self.task, phase=phase, cell=cell)

    def log(self, line: str) -> None:
        self.progress.console.print(Text(line.rstrip(), style="dim"), highlight=False)

    def start(self, total: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task("run", total=total, phase="run", cell="")
        else:
            self.progress.update(self.task, total=total, completed=0, phase="run")

    def job_started(self, job: Job) -> None:
        self.progress.update(self.task, phase="run", cell=f"{job.cell.cell_id} #{job.repeat}")

    def job_finished(self, job: Job, record: dict[str, Any]) -> None:
        status = record["status"]
        style = STATUS_STYLE.get(status, "")
        extra = ""
        payload = record.get("payload") or {}
        if status == "ok" and payload.get("throughput_samples_per_s"):
            extra = f"  {payload['throughput_samples_per_s']:,.0f} samples/s"
        elif record.get("reason"):
            extra = f"  {record['reason'][:120]}"
        contention = record.get("contention") or {}
        if contention.get("contended"):
            status, style = "contended", "yellow"
            then = "re-running" if record.get("rerun") else "excluded from verdicts"
            extra += f"  ({'; '.join(contention.get('reasons') or [])}; {then})"
        attempt = f" attempt {record.get('attempt', 0) + 1}" if record.get("attempt") else ""
        line = Text.assemble((f"{status:>11}", style), f"  {job.cell.cell_id} #{job.repeat}{attempt}{extra}")
        self.progress.console.print(line, highlight=False)
        if not record.get("rerun"):
            self.progress.advance(self.task)
