"""The run page's timeline section: per series a chart of step time (CI) and peak memory against the TF
release with the Keras 2 -> 3 boundary, and the largest release-to-release changes with their verdicts.
Built from the stored analysis (`AnalysisDoc.timeline`); plain values, no jinja2."""

from __future__ import annotations

import math
from typing import Any

from harness.analysis.document import AnalysisDoc, TimelineSeries
from harness.report.timelinechart import ReleasePoint, release_chart

Doc = dict[str, Any]
#: rows of the largest-changes table
MAX_CHANGES = 15
MIB = 2**20


def _memory(container: float, rss: float) -> float:
    """Peak memory in MiB: the container's (cgroup) when measured, else the payload's peak RSS."""
    value = container if math.isfinite(container) else rss
    return value / MIB if math.isfinite(value) else math.nan


def series_label(s: TimelineSeries) -> str:
    return f"{s.workload} · {s.params_short} · {s.device}"


def _chart(s: TimelineSeries) -> Any:
    points = [
        ReleasePoint(
            label=p.tf_minor,
            value=p.step_s * 1000,
            lo=p.ci_lo_s * 1000,
            hi=p.ci_hi_s * 1000,
            memory=_memory(p.container_peak_bytes, p.host_peak_rss_bytes),
            keras=p.keras,
        )
        for p in s.points
    ]
    title = f"{series_label(s)}: step time (95% CI) and peak memory by TF release"
    return release_chart(points, title)


def _size(ratio: float) -> float:
    return abs(math.log(ratio)) if math.isfinite(ratio) and ratio > 0 else -1.0


def timeline_context(ana: AnalysisDoc) -> Doc | None:
    """None when no series spans three TF releases."""
    if not ana.timeline:
        return None
    changes = [{**c.model_dump(), "series": series_label(s)} for s in ana.timeline for c in s.changes]
    changes.sort(key=lambda c: -_size(c["ratio"]))
    keras = sorted({p.keras for s in ana.timeline for p in s.points if p.keras is not None})
    return {
        "series": [
            {"label": series_label(s), "params_label": s.params_label, "n": len(s.points), "chart": _chart(s)}
            for s in ana.timeline
        ],
        "changes": changes[:MAX_CHANGES],
        "n_changes": len(changes),
        "keras": keras,
    }
