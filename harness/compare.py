"""Compare two runs cell by cell (matched by cell_id): a rich table and a regression exit code."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness import stats
from harness.store import RunData


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms" if math.isfinite(seconds) else "-"


def compare_runs(
    run_a: RunData, run_b: RunData, fail_on_regression_pct: float | None, console: Console
) -> int:
    """Print B vs A for every cell measured in both runs; return 1 if a cell regressed, else 0.

    A cell regressed when B's median step time is more than `fail_on_regression_pct` percent above A's and the
    difference is significant (Mann-Whitney p < stats.ALPHA and the ratio CI lies entirely above 1).
    With `fail_on_regression_pct=None` nothing fails (exit code 0): the table is informational.
    """
    a, b = stats.analyse_run(run_a), stats.analyse_run(run_b)
    comp = stats.compare_run_cells(a, b)
    threshold = fail_on_regression_pct
    bad = stats.regressed(comp, threshold) if threshold is not None else None

    table = Table(
        title=f"B {escape(run_b.run_id)} vs A {escape(run_a.run_id)} (median steady-state step time)"
    )
    for name, justify in (
        ("cell", "left"),
        ("A median", "right"),
        ("B median", "right"),
        ("ratio B/A [95% CI]", "right"),
        ("verdict", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    rows: list[dict[Any, Any]] = comp.to_dict("records")
    for i, row in enumerate(rows):
        regressed = bool(bad.iloc[i]) if bad is not None else False
        style = (
            "bold red" if regressed else {"slower": "red", "faster": "green"}.get(str(row["direction"]), "")
        )
        ratio, lo, hi = float(row["ratio"]), float(row["ratio_lo"]), float(row["ratio_hi"])
        verdict = ("REGRESSION: " if regressed else "") + stats.verdict(
            "B", "A", ratio, lo, hi, float(row["p"]), bool(row["significant"])
        )
        if row["warnings"]:
            verdict += f" (noise: {row['warnings']})"
        table.add_row(
            escape(str(row["b_cell"])),
            _ms(float(row["a_median_s"])),
            _ms(float(row["b_median_s"])),
            f"{ratio:.2f}{stats.TIMES} [{lo:.2f}, {hi:.2f}]",
            escape(verdict),
            style=style,
        )
    console.print(table)
    only_a = sorted(set(a.cells.samples) - set(b.cells.samples))
    only_b = sorted(set(b.cells.samples) - set(a.cells.samples))
    if only_a or only_b:
        console.print(f"not compared: {len(only_a)} cell(s) measured only in A, {len(only_b)} only in B")
    if not len(comp):
        console.print("no cell was measured in both runs")
    n_bad = int(bad.sum()) if bad is not None else 0
    if n_bad:
        console.print(f"[bold red]{n_bad} cell(s) regressed by more than {threshold:g}%[/]")
        return 1
    if threshold is not None:
        console.print(f"no cell regressed by more than {threshold:g}%")
    return 0
