"""The calibration probe's series: host speed drift over a run and the measured matmul peak."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from harness.analysis.frame import num, sub

Doc = dict[str, Any]
#: a probe whose matmul rate moved more than this from the run's first probe flags its round; two runs whose
#: median probe rates differ by more than this cannot be compared step for step
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
        # the matmul decides: the pure-Python loop is shown, but its own repeatability in a container is
        # about +-20% on a small VM (memory layout, hash seeds), too loose to flag anything
        flagged = math.isfinite(d_mm) and abs(d_mm) > warn_pct
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


@dataclass(frozen=True)
class HostChange:
    """How much the host's own speed moved across two runs, from their calibration probes: B's median rate
    vs A's, and the largest swing of a single probe from its own run's median (positive: faster)."""

    matmul_pct: float | None
    loop_pct: float | None
    #: the largest |probe / own run's median - 1| over both runs, percent
    within_pct: float | None
    #: what every ratio CI is widened by on both sides (the larger of |matmul_pct| and within_pct), or None
    widen_pct: float | None
    confounded: bool
    note: str | None


def _swing(points: list[ProbePoint]) -> float:
    med = statistics.median([p.matmul_gflops for p in points])
    return max(abs(p.matmul_gflops / med - 1) * 100 for p in points) if med > 0 else 0.0


def _host_note(mm: float, within: float, warn_pct: float) -> str:
    moved = []
    if abs(mm) > warn_pct:
        moved.append(f"ran {abs(mm):.1f}% {'faster' if mm > 0 else 'slower'} in B than in A (median rates)")
    if within > warn_pct:
        moved.append(f"swung by up to {within:.1f}% within a run")
    widen_by = max(abs(mm), within)
    return (
        f"the host's calibration probe (float32 matmul) {' and '.join(moved)}, more than {warn_pct:g}%: "
        f"every ratio CI is widened by {widen_by:.1f}% on both sides before a verdict, so only differences "
        "larger than the host's own change are called (runs minutes apart on a shared host differ by its "
        "drift, which no within-run CI holds; to decide, put both in one matrix, whose rounds interleave)"
    )


def host_change(a: Drift, b: Drift, warn_pct: float = DRIFT_WARN_PCT) -> HostChange:
    """The host's own change across runs A and B. Beyond `warn_pct` (between the runs' median rates, or a
    probe's swing within either run) part of any step-time difference may be the machine's, not the
    software's, and `widen` makes room for it."""
    if not a.points or not b.points:
        return HostChange(None, None, None, None, False, None)
    mm = (
        statistics.median([p.matmul_gflops for p in b.points])
        / statistics.median([p.matmul_gflops for p in a.points])
        - 1
    ) * 100
    loops_a = [p.loop_mops for p in a.points if math.isfinite(p.loop_mops)]
    loops_b = [p.loop_mops for p in b.points if math.isfinite(p.loop_mops)]
    loop = (
        (statistics.median(loops_b) / statistics.median(loops_a) - 1) * 100 if loops_a and loops_b else None
    )
    within = max(_swing(a.points), _swing(b.points))
    confounded = abs(mm) > warn_pct or within > warn_pct
    return HostChange(
        round(mm, 2),
        None if loop is None else round(loop, 2),
        round(within, 2),
        round(max(abs(mm), within), 2) if confounded else None,
        confounded,
        _host_note(mm, within, warn_pct) if confounded else None,
    )


def widen(lo: float, hi: float, change: HostChange) -> tuple[float, float]:
    """A ratio CI widened by the host's own change across two runs (unchanged when it stayed within the
    warning level): the host could explain a ratio anywhere in [1/(1+h), 1+h] by itself."""
    if not change.confounded or change.widen_pct is None:
        return lo, hi
    factor = 1 + change.widen_pct / 100
    return lo / factor, hi * factor
