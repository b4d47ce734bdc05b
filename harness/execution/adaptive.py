"""Adaptive rounds: where each compared pair (or single cell) stands against the CI target, how many
repeats each cell has, and how long one more round should take."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from harness.results.store import RunStore

Doc = dict[str, Any]


@dataclass
class Adaptive:
    """How the adaptive rounds ended, for the manifest and the report."""

    rounds: int = 0
    stopped: str = "no target"
    pairs: list[Doc] = field(default_factory=list)


def repeat_counts(store: RunStore) -> dict[str, int]:
    """Repeats done so far per cell."""
    counts: dict[str, int] = {}
    for cell_id, repeat in store.done():
        counts[cell_id] = max(counts.get(cell_id, 0), repeat + 1)
    return counts


def round_estimate(store: RunStore, cells: list[str]) -> float:
    """Seconds one more round of `cells` should take: the sum of their median wall times so far."""
    walls: dict[str, list[float]] = {}
    for rec in store.iter_records():
        if isinstance(rec.get("wall_s"), int | float):
            walls.setdefault(rec["cell_id"], []).append(float(rec["wall_s"]))
    return sum(statistics.median(walls[c]) for c in cells if c in walls)


def pair_status(store: RunStore, margin_pct: float, target: float | None) -> list[Doc]:
    """Each compared pair (or, without a baseline pair, each cell) against the CI target."""
    from harness import analysis

    run = store.load()
    ana = analysis.analyse_run(run, margin_pct=margin_pct)
    out: list[Doc] = []
    for row in ana.comparisons.to_dict("records"):
        hw = float(row["half_width_pct"])
        out.append(
            {
                "cells": [str(row["a_cell"]), str(row["b_cell"])],
                "half_width_pct": None if math.isnan(hw) else round(hw, 3),
                "reached": target is not None and not math.isnan(hw) and hw <= target,
            }
        )
    paired = {c for p in out for c in p["cells"]}
    st = ana.cells.stats[ana.cells.stats["measured"]]
    for cell_id, step, lo, hi in zip(st.index, st["step_s"], st["ci_lo_s"], st["ci_hi_s"], strict=True):
        if cell_id in paired:
            continue
        step, lo, hi = float(step), float(lo), float(hi)
        hw = max(hi / step - 1, 1 - lo / step) * 100 if all(map(math.isfinite, (step, lo, hi))) else math.nan
        out.append(
            {
                "cells": [str(cell_id)],
                "half_width_pct": None if math.isnan(hw) else round(hw, 3),
                "reached": target is not None and not math.isnan(hw) and hw <= target,
            }
        )
    return out
