"""Terminal output: the plan table, image build status lines, live run progress (cell, repeat, phase, ETA)
and the end-of-run summary. Not on a terminal (CI logs): plain timestamped lines without escape sequences."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from harness.imageplan import BuildEvents, ImageStatus, short_build_error
from harness.plan import Cell
from harness.runner import Job, RunObserver
from harness.timestamps import utc_iso

STATUS_STYLE = {"ok": "green", "failed": "red", "timeout": "red", "oom": "red", "unavailable": "yellow"}


def plan_table(cells: list[Cell], title: str) -> Table:
    """User strings (matrix path, profile, cell ids, reasons) are Text: never read as rich markup."""
    table = Table(title=Text(title), title_justify="left")
    table.add_column("cell", no_wrap=True)
    table.add_column("TF")
    table.add_column("base")
    table.add_column("status", overflow="fold")
    for cell in cells:
        status = (
            Text("runnable", "green") if cell.available else Text(f"unavailable: {cell.reason}", "yellow")
        )
        table.add_row(Text(cell.cell_id), Text(cell.image.tf), Text(cell.image.base.kind), status)
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
    # on a narrow terminal the cell id folds; a number is never cut short ("1,6..." reads as a value)
    table.add_column("cell", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("samples/s (median)", justify="right", no_wrap=True, min_width=9)
    table.add_column("contended", justify="right", no_wrap=True)
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


# ------------------------------------------------------------------------------------------ plain output

#: ANSI escape sequences and other control characters (kept out of non-terminal output)
_CONTROL_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")
_NOTE_CHARS = 70


def strip_control(text: str) -> str:
    """``text`` without escape sequences or control characters (tabs and newlines stay)."""
    return _CONTROL_RE.sub("", text.replace("\r", ""))


def is_terminal(console: Console) -> bool:
    """Live displays on a terminal; plain timestamped lines otherwise (CI logs, pipes, files)."""
    return bool(console.is_terminal) and not console.is_dumb_terminal


def fmt_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _clip(text: str, limit: int = _NOTE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Lines:
    """One place that writes a line: rich text above any live display on a terminal; otherwise a plain line
    with a UTC timestamp and no escape sequences at all (one timestamp per line of a multi-line text)."""

    def __init__(self, console: Console, now: Callable[[], float]) -> None:
        self.console = console
        self.now = now
        self.terminal = is_terminal(console)

    def __call__(self, text: str | Text, style: str = "") -> None:
        if self.terminal:
            renderable = text if isinstance(text, Text) else Text(text, style=style)
            self.console.print(renderable, highlight=False, soft_wrap=True)
            return
        raw = text.plain if isinstance(text, Text) else text
        stamp = utc_iso(self.now())
        for part in raw.splitlines() or [""]:
            self.console.out(f"{stamp} {strip_control(part)}", highlight=False)


# ------------------------------------------------------------------------------------------ image builds


@dataclass
class _ImageRow:
    name: str
    state: str = "waiting"
    detail: str = ""
    note: str = ""
    started: float | None = None
    ended: float | None = None
    size: int | None = None
    tag: str | None = None


_ICONS = {"ready": ("✓", "green"), "unavailable": ("-", "yellow"), "failed": ("✗", "red")}


class BuildDisplay(BuildEvents):
    """`harness build`: one live status line per image (step, elapsed time, size) on a terminal; plain
    timestamped lines otherwise. Every log line goes to files under the cache's logs folder (named once);
    only ``verbose`` streams them here. A failing step prints its log tail."""

    def __init__(
        self,
        console: Console,
        log_dir: Path,
        *,
        verbose: bool = False,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.log_dir = log_dir
        self.verbose = verbose
        self.monotonic = monotonic
        self.line = _Lines(console, now)
        self.rows: dict[str, _ImageRow] = {}
        self.current: str | None = None
        self.live: Live | None = None

    def __enter__(self) -> BuildDisplay:
        self.line(f"full build logs: {self.log_dir}/", style="dim")
        if self.line.terminal:
            self.live = Live(self, console=self.console, refresh_per_second=4, transient=False)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.refresh()
            self.live.stop()

    def images(self, names: list[str]) -> None:
        for name in names:
            self._row(name)

    def _row(self, name: str) -> _ImageRow:
        return self.rows.setdefault(name, _ImageRow(name))

    def _elapsed(self, row: _ImageRow) -> float:
        if row.started is None:
            return 0.0
        return (row.ended if row.ended is not None else self.monotonic()) - row.started

    def __rich__(self) -> Table:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=1)
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True, width=11)
        grid.add_column(no_wrap=True, justify="right", width=6)
        grid.add_column(no_wrap=True, overflow="ellipsis")
        for row in self.rows.values():
            icon: Any
            if row.state in _ICONS:
                char, style = _ICONS[row.state]
                icon = Text(char, style=style)
            elif row.state == "waiting":
                icon = Text("·", style="dim")
            else:
                icon = Spinner("dots", style="cyan")
            detail = row.detail if not row.note else f"{row.detail} · {row.note}"
            elapsed = fmt_duration(self._elapsed(row)) if row.started is not None else ""
            grid.add_row(icon, Text(row.name, style="bold"), row.state, elapsed, Text(_clip(detail, 90)))
        return grid

    # BuildEvents
    def step(self, image: str, step: str, detail: str = "") -> None:
        row = self._row(image)
        if row.started is None:
            row.started = self.monotonic()
        row.state, row.detail, row.note = step, detail, ""
        self.current = image
        if not self.line.terminal:
            self.line(f"{image}: {step}" + (f" ({detail})" if detail else ""))

    def log(self, line: str) -> None:
        text = strip_control(line).rstrip()
        if self.verbose:
            self.line(text, style="dim")
        elif self.current is not None:
            self.rows[self.current].note = _clip(text.removeprefix(f"[{self.current}] "))

    def done(self, image: str, status: ImageStatus, size_bytes: int | None = None) -> None:
        row = self._row(image)
        if row.started is None:
            row.started = self.monotonic()
        row.ended = self.monotonic()
        row.size, row.tag, row.note = size_bytes, status.tag, ""
        if status.available:
            row.state = "ready"
            how = f"built in {fmt_duration(self._elapsed(row))}" if status.built else "cached"
            row.detail = ", ".join(x for x in (how, fmt_bytes(size_bytes)) if x) + f"  {status.tag}"
        else:
            row.state = "unavailable"
            row.detail = status.reason or "unavailable"
        if not self.line.terminal:
            self.line(f"{image}: {row.state}: {row.detail}")

    def failed(self, image: str, message: str) -> None:
        row = self._row(image)
        row.ended = self.monotonic()
        row.state, row.note = "failed", ""
        row.detail = short_build_error(message)
        self.line(f"{image}: build failed after {fmt_duration(self._elapsed(row))}", style="bold red")
        self.line(message.strip(), style="red")

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for row in self.rows.values():
            counts[row.state] = counts.get(row.state, 0) + 1
        return ", ".join(f"{n} {state}" for state, n in counts.items())


# ------------------------------------------------------------------------------------------ run progress


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
        self.line = _Lines(console, now)
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
            self.progress.update(self.task, cell=_clip(text, 60))

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
            extra = f"  {payload['throughput_samples_per_s']:,.0f} samples/s"
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
