"""Terminal output: the plan table and the end-of-run summary (read from the run's analysis), and the line
writer and formatting shared by the live displays (image builds: `harness.report.builddisplay`; run progress:
`harness.report.runprogress`). Not on a terminal (CI logs): plain timestamped lines without escape
sequences."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.matrix.plan import Cell
from harness.timestamps import utc_iso

if TYPE_CHECKING:
    from harness.analysis.document import AnalysisDoc
    from harness.execution.adaptive import Adaptive

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


def summary_table(analysis: AnalysisDoc) -> Table:
    """One row per cell of the run's analysis: statuses over repeats, throughput (samples/s: batch size /
    step time, the same field the HTML report shows; calls/s for the per-call workloads), contended
    executions excluded, and the reason for any non-ok repeat."""
    table = Table(title="Run summary", title_justify="left")
    # on a narrow terminal the cell id folds; a number is never cut short ("1,6..." reads as a value)
    table.add_column("cell", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("throughput", justify="right", no_wrap=True, min_width=15)
    table.add_column("contended", justify="right", no_wrap=True)
    table.add_column("reason", overflow="fold")
    for cell in sorted(analysis.cells, key=lambda c: c.cell_id):
        statuses = cell.statuses or ["-"]
        status = Text(",".join(statuses), style=STATUS_STYLE.get(statuses[0], ""))
        tput = cell.throughput
        table.add_row(
            Text(cell.cell_id),
            status,
            f"{tput:,.0f} {cell.rate_unit}" if cell.measured and math.isfinite(tput) else "-",
            str(cell.n_contended) if cell.n_contended else "",
            Text("; ".join(cell.reasons)[:200]),
        )
    return table


def public_record_table(analysis: AnalysisDoc) -> Table | Text | None:
    """The public record's verdicts in brief, one row per claim this run could speak to (the others are
    counted in the title); one line when it could speak to none; None without claims."""
    spoken = [c for c in analysis.public_record if c.measurements]
    if not analysis.public_record:
        return None
    if not spoken:
        return Text(
            f"The public record: this run can speak to none of its {len(analysis.public_record)} claims "
            "(the report's section says why for each)"
        )
    silent = len(analysis.public_record) - len(spoken)
    table = Table(
        title=f"The public record ({silent} claim(s) this run cannot speak to)", title_justify="left"
    )
    table.add_column("claim", overflow="fold")
    table.add_column("reported", justify="right", no_wrap=True)
    table.add_column("measured [95% CI]", overflow="fold")
    table.add_column("verdict", no_wrap=True)
    for claim in spoken:
        measured = "; ".join(
            f"{_pair_name(m.numerator_image, m.denominator_image)}: "
            f"{m.ratio:.2f} [{m.ratio_lo:.2f}, {m.ratio_hi:.2f}] {m.verdict}"
            for m in claim.measurements
        )
        table.add_row(Text(claim.id), f"{claim.reported_ratio:g}x", Text(measured), Text(claim.verdict))
    return table


def _pair_name(numerator: str, denominator: str) -> str:
    return numerator if numerator == denominator else f"{numerator} / {denominator}"


# ------------------------------------------------------------------------------------------ plain output

#: ANSI escape sequences and other control characters (kept out of non-terminal output)
_CONTROL_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")
_NOTE_CHARS = 70


def adaptive_line(target: float | None, adaptive: Adaptive) -> Text | None:
    """How the adaptive rounds of a run ended (None: the run had no CI target)."""
    if target is None:
        return None
    reached = sum(1 for p in adaptive.pairs if p["reached"])
    return Text(
        f"adaptive repeats: {adaptive.rounds} extra round(s); {reached} of {len(adaptive.pairs)} pair(s) "
        f"reached ±{target:g}%; stopped: {adaptive.stopped}"
    )


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


def clip(text: str, limit: int = _NOTE_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters (an ellipsis marks the cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Lines:
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
