"""The calibration probe's series: host speed drift over a run and the measured matmul peak."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from harness.stats.frame import num, sub

Doc = dict[str, Any]
#: a probe that moved more than this from the run's first probe flags its round
DRIFT_WARN_PCT = 5.0


@dataclass(frozen=True)
class ProbePoint:
    index: int
    label: str
    at: str
    matmul_gflops: float
    loop_mops: float
    matmul_drift_pct: float
    loop_drift_pct: float
    flagged: bool


@dataclass(frozen=True)
class Drift:
    points: list[ProbePoint]
    peak_flops: float | None
    flagged_labels: list[str]
    max_abs_drift_pct: float | None
    n_failed: int


def _drift(value: float, ref: float) -> float:
    return (value / ref - 1) * 100 if math.isfinite(value) and math.isfinite(ref) and ref > 0 else math.nan


def probe_drift(probes: list[Doc], warn_pct: float = DRIFT_WARN_PCT) -> Drift:
    """Drift of each probe against the first ok probe; the median matmul rate is the measured peak."""
    ok = [p for p in sorted(probes, key=lambda p: int(p.get("index") or 0)) if p.get("status") == "ok"]
    rates = [
        (p, num(sub(p, "result").get("matmul_gflops")), num(sub(p, "result").get("loop_mops"))) for p in ok
    ]
    rates = [r for r in rates if math.isfinite(r[1])]
    if not rates:
        return Drift([], None, [], None, len(probes) - len(ok))
    ref_mm, ref_loop = rates[0][1], rates[0][2]
    points = []
    for p, mm, loop in rates:
        d_mm, d_loop = _drift(mm, ref_mm), _drift(loop, ref_loop)
        flagged = any(math.isfinite(d) and abs(d) > warn_pct for d in (d_mm, d_loop))
        points.append(
            ProbePoint(
                int(p.get("index") or 0),
                str(p.get("label") or ""),
                str(p.get("at") or ""),
                mm,
                loop,
                d_mm,
                d_loop,
                flagged,
            )
        )
    mms = sorted(pt.matmul_gflops for pt in points)
    peak = mms[len(mms) // 2] * 1e9
    drifts = [abs(d) for pt in points for d in (pt.matmul_drift_pct, pt.loop_drift_pct) if math.isfinite(d)]
    return Drift(
        points,
        peak,
        [pt.label for pt in points if pt.flagged],
        max(drifts) if drifts else None,
        len(probes) - len(ok),
    )
