"""Was the host quiet enough while an execution ran? The verdict stored with every record."""

from __future__ import annotations

import os
from typing import Any

from harness.matrix.config import QuietGate

Doc = dict[str, Any]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def threshold_cores(quiet: QuietGate, host_cpus: int | None) -> float:
    return quiet.threshold * float(host_cpus or os.cpu_count() or 1)


def judge(telemetry: Doc | None, quiet: QuietGate) -> Doc | None:
    """`contended` when other processes used more than the threshold of the cores on average during the
    execution, or steal exceeded its threshold; None when there is no evidence (no telemetry)."""
    if not telemetry:
        return None
    host = telemetry.get("host_cpus")
    limit = threshold_cores(quiet, host if isinstance(host, int) else None)
    reasons: list[str] = []
    others = _number(telemetry.get("others_cores_mean"))
    peak = _number(telemetry.get("others_cores_max"))
    if others is not None and others > limit:
        peak_text = f", max {peak:.2f}" if peak is not None else ""
        reasons.append(
            f"other processes used {others:.2f} cores on average{peak_text} "
            f"(threshold {limit:.2f} = {quiet.threshold:.0%} of {host or '?'} cores)"
        )
    steal = _number(telemetry.get("steal_pct"))
    if steal is not None and steal > quiet.steal_pct:
        reasons.append(f"steal {steal:.1f}% of CPU time (threshold {quiet.steal_pct:g}%)")
    return {
        "contended": bool(reasons),
        "reasons": reasons,
        "threshold_cores": round(limit, 4),
        "steal_threshold_pct": quiet.steal_pct,
    }
