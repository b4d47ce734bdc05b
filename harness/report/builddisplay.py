"""`harness build` on the terminal: one live status line per image; plain timestamped lines in CI logs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from harness.images.imageplan import BuildEvents, ImageStatus, short_build_error
from harness.report.console import Lines, clip, fmt_bytes, fmt_duration, strip_control


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
        self.line = Lines(console, now)
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
            grid.add_row(icon, Text(row.name, style="bold"), row.state, elapsed, Text(clip(detail, 90)))
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
            self.rows[self.current].note = clip(text.removeprefix(f"[{self.current}] "))

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
