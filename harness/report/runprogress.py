"""`harness run` on the terminal: a progress bar with the current cell, repeat, phase and ETA, and a line per
finished execution; plain timestamped lines in CI logs."""

from __future__ import annotations

import time
from collections.abc import Callable
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
from rich.text import Text

from harness.execution.runner import Job, RunObserver
from harness.images.imageplan import BuildEvents, ImageStatus
from harness.matrix.params import PER_CALL_WORKLOADS
from harness.report.console import STATUS_STYLE, Lines, clip, fmt_bytes, fmt_duration, strip_control


class ProgressObserver(RunObserver, BuildEvents):
    """A rich progress bar with the current cell, repeat and phase, plus the elapsed time and ETA, and a
    compact line per finished execution. Not on a terminal: plain timestamped lines, no escape sequences.
    Image builds (``harness run`` builds what is missing) show as the bar's phase; their logs go to files,
    and stream here only when ``verbose``."""

    def __init__(
        self,
        console: Console,
        verbose: bool = False,
        *,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.verbose = verbose
        self.monotonic = monotonic
        self.line = Lines(console, now)
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
            disable=not self.line.terminal,  # plain lines instead (and stop() then prints nothing)
        )
        self.task: Any = None
        self.total = 0
        self.finished = 0
        self._t0 = monotonic()
        self._last_phase = ""
        self._build_t0: dict[str, float] = {}

    @property
    def terminal(self) -> bool:
        return self.line.terminal

    def __enter__(self) -> ProgressObserver:
        if self.terminal:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def phase(self, phase: str, cell: str = "") -> None:
        if self.terminal:
            if self.task is None:
                self.task = self.progress.add_task("run", total=None, phase=phase, cell=cell)
            else:
                self.progress.update(self.task, phase=phase, cell=cell)
            return
        text = phase + (f": {cell}" if cell else "")
        if text != self._last_phase:
            self._last_phase = text
            self.line(text)

    def note(self, text: str) -> None:
        """A short line always shown (e.g. which local interpreter has what)."""
        self.line(strip_control(text).rstrip(), style="dim")

    def log(self, line: str) -> None:
        text = strip_control(line).rstrip()
        if self.verbose:
            self.line(text, style="dim")
        elif self.terminal and self.task is not None:
            self.progress.update(self.task, cell=clip(text, 60))

    def start(self, total: int) -> None:
        self.total, self.finished, self._t0 = total, 0, self.monotonic()
        if not self.terminal:
            self.line(f"run: {total} execution(s)")
            return
        if self.task is None:
            self.task = self.progress.add_task("run", total=total, phase="run", cell="")
        else:
            self.progress.update(self.task, total=total, completed=0, phase="run")

    def _count(self, n: int) -> str:
        width = len(str(self.total))
        return f"[{n:>{width}}/{self.total}]"

    def job_started(self, job: Job) -> None:
        where = f"{job.cell.cell_id} #{job.repeat}"
        if self.terminal:
            self.progress.update(self.task, phase="run", cell=where)
        else:
            self.line(f"{self._count(self.finished + 1)} start {where}")

    def job_finished(self, job: Job, record: dict[str, Any]) -> None:
        status = record["status"]
        style = STATUS_STYLE.get(status, "")
        extra = ""
        payload = record.get("payload") or {}
        if status == "ok" and payload.get("throughput_samples_per_s"):
            extra = f"  {_rate(job.cell.workload, payload)}"
        elif record.get("reason"):
            extra = f"  {record['reason'][:200]}"
        if isinstance(record.get("wall_s"), int | float):
            extra += f"  {record['wall_s']:.1f} s"
        contention = record.get("contention") or {}
        if contention.get("contended"):
            status, style = "contended", "yellow"
            then = "re-running" if record.get("rerun") else "excluded from verdicts"
            extra += f"  ({'; '.join(contention.get('reasons') or [])}; {then})"
        attempt = f" attempt {record.get('attempt', 0) + 1}" if record.get("attempt") else ""
        if not record.get("rerun"):
            self.finished += 1
        where = f"{job.cell.cell_id} #{job.repeat}{attempt}"
        if self.terminal:
            self.line(Text.assemble((f"{status:>11}", style), f"  {where}{extra}"))
            if not record.get("rerun"):
                self.progress.advance(self.task)
            return
        self.line(f"{self._count(self.finished)} {status} {where}{extra}{self._eta()}")

    def _eta(self) -> str:
        left = self.total - self.finished
        if self.finished <= 0 or left <= 0:
            return ""
        per = (self.monotonic() - self._t0) / self.finished
        return f"  ETA {fmt_duration(per * left)}"

    # BuildEvents: `harness run` builds missing images before the first execution
    def step(self, image: str, step: str, detail: str = "") -> None:
        self._build_t0.setdefault(image, self.monotonic())
        if self.terminal:
            self.phase(f"{step} {image}", detail)
        else:
            self.line(f"image {image}: {step}" + (f" ({detail})" if detail else ""))

    def done(self, image: str, status: ImageStatus, size_bytes: int | None = None) -> None:
        if status.available:
            took = self.monotonic() - self._build_t0.get(image, self.monotonic())
            how = f"built in {fmt_duration(took)}" if status.built else "cached"
            size = f", {fmt_bytes(size_bytes)}" if size_bytes else ""
            self.line(f"image {image}: ready ({how}{size})", style="green")
        else:
            self.line(f"image {image}: unavailable: {status.reason}", style="yellow")

    def failed(self, image: str, message: str) -> None:
        self.line(f"image {image}: build failed; its cells are marked failed", style="bold red")
        self.line(message.strip(), style="red")


def _rate(workload: str, payload: dict[str, Any]) -> str:
    """An execution's rate as the run summary shows it: samples/s, or calls/s for the per-call workloads
    (whose payload counts rows: batch_size per call)."""
    rate = float(payload["throughput_samples_per_s"])
    if workload not in PER_CALL_WORKLOADS:
        return f"{rate:,.0f} samples/s"
    batch = (payload.get("spec") or {}).get("batch_size")
    return f"{rate / batch:,.1f} calls/s" if isinstance(batch, int) and batch > 0 else f"{rate:,.0f} rows/s"
