"""One pair of cells from a chosen subset of a run's records: the evidence of one `harness bisect` probe.

The same statistics as every comparison of the report (`cells.cell_table`, `comparisons.compare_pairs`:
execution-level bootstrap, contended executions excluded, the verdict at the margin), on the records of B and
on the records of A whose repeats were chosen (the good release's executions taken alongside the probe, plus
those reused from earlier probes), and where the ratio's CI lies against a regression threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from harness.analysis import verdicts
from harness.analysis.cells import cell_table
from harness.analysis.comparisons import compare_pairs
from harness.analysis.frame import records_frame

Doc = dict[str, Any]


@dataclass(frozen=True)
class PairEvidence:
    """B (the probed release) against A (the good release)."""

    ratio: float
    ratio_lo: float
    ratio_hi: float
    #: the verdict at the margin (verdicts.classify) and its sentence
    kind: str
    verdict: str
    #: where the CI lies against the threshold (verdicts.threshold_side)
    side: verdicts.ThresholdSide
    a_step_s: float
    b_step_s: float
    #: executions used (ok and not contended) per side, contended ones of both
    a_n_exec: int
    b_n_exec: int
    n_contended: int
    #: ok executions per side (contended included): 0 means the side never produced a measurement
    a_n_ok: int
    b_n_ok: int


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else math.nan


def pair_evidence(
    records: Iterable[Doc],
    a_cell: str,
    b_cell: str,
    a_repeats: set[int],
    threshold_pct: float,
    margin_pct: float,
    names: tuple[str, str] = ("A", "B"),
    seed: int = 0,
) -> PairEvidence:
    """B's records and A's records of `a_repeats` compared; `names` (A, B) word the verdict."""
    chosen = [
        r
        for r in records
        if r["cell_id"] == b_cell or (r["cell_id"] == a_cell and int(r["repeat"]) in a_repeats)
    ]
    table = cell_table(records_frame(chosen), seed)
    stats = table.stats
    pairs = pd.DataFrame({"a_cell": [a_cell], "b_cell": [b_cell]})
    out = compare_pairs(table, table, pairs, margin_pct)
    row: Doc = {str(k): v for k, v in out.iloc[0].items()} if len(out) else {}
    ratio, lo, hi = (_num(row.get(k)) for k in ("ratio", "ratio_lo", "ratio_hi"))

    def stat(cell: str, col: str) -> Any:
        return stats.at[cell, col] if cell in stats.index else 0

    return PairEvidence(
        ratio=ratio,
        ratio_lo=lo,
        ratio_hi=hi,
        kind=verdicts.classify(ratio, lo, hi, margin_pct),
        verdict=verdicts.wording(names[1], names[0], ratio, lo, hi, margin_pct),
        side=verdicts.threshold_side(lo, hi, threshold_pct),
        a_step_s=_num(stat(a_cell, "step_s")),
        b_step_s=_num(stat(b_cell, "step_s")),
        a_n_exec=int(stat(a_cell, "n_exec")),
        b_n_exec=int(stat(b_cell, "n_exec")),
        n_contended=int(stat(a_cell, "n_contended")) + int(stat(b_cell, "n_contended")),
        a_n_ok=int(stat(a_cell, "n_ok")),
        b_n_ok=int(stat(b_cell, "n_ok")),
    )
