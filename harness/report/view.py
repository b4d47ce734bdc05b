"""The run page's view model: everything `run.html.j2` shows, built from a run's stored analysis
(`harness.analysis.stored`: read, never recomputed per render when it is current) as plain values.

Strings from data stay unescaped here (the templates escape them); charts are `charts.Svg` markup. No jinja2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness import analysis
from harness.analysis import stored
from harness.analysis.document import AnalysisDoc
from harness.matrix.params import PER_CALL_WORKLOADS
from harness.report import charts
from harness.report.bisectview import bisect_context
from harness.report.htmlformat import finite
from harness.report.timelineview import timeline_context
from harness.results.store import RunData

Doc = dict[str, Any]
#: charts stop after this many rows (tables always list everything)
MAX_CHART_ROWS = 150
#: trend charts per report (regressions first)
MAX_TREND_CHARTS = 200
#: verdict lines per workload in the headline (largest differences first when there are more)
MAX_HEADLINES = 12
#: the phases table leaves out interpreter start-up
PHASES = tuple(p for p in analysis.PHASES if p != "interpreter")
#: phases stacked in the chart (fit_total/fit_tail overlap train_total and are shown in the table)
CHART_PHASES = ("import", "data", "build", "symbolic_build", "first_step", "train_total", "eval")


class Row(dict[str, Any]):
    """A record whose keys are also attributes (its __dict__ is itself), so Jinja's `row.x` is one lookup."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.__dict__ = self

    def __getattr__(self, name: str) -> Any:  # only reached for missing keys
        raise AttributeError(name)


def frame_rows(frame: Any) -> list[Row]:
    """A DataFrame's rows as `Row`s (empty for None or an empty frame)."""
    if frame is None or len(frame) == 0:
        return []
    cols = [str(c) for c in frame.columns]
    columns = [frame[c].tolist() for c in frame.columns]  # native Python values, column at a time (fast)
    return [Row(zip(cols, values, strict=True)) for values in zip(*columns, strict=True)]


def model_rows(models: Sequence[Any]) -> list[Row]:
    """Rows of the analysis document (pydantic models) as `Row`s."""
    return [Row(m.model_dump()) for m in models]


def _cell_rows(ana: AnalysisDoc) -> list[Row]:
    order = {img: i for i, img in enumerate(ana.images)}
    rows = model_rows(sorted(ana.cells, key=lambda c: c.cell_id))
    for row in rows:
        row["image_index"] = order.get(row.image, 0)
    return sorted(rows, key=lambda r: (r.workload, r.params_key, r.image_index))


def _capped(svg: charts.Svg, shown: int, total: int) -> Doc:
    return {"svg": svg, "shown": shown, "total": total}


def _speed_charts(cells: list[Row], images: list[str]) -> list[Doc]:
    by_workload: dict[str, list[charts.Bar]] = {}
    totals: dict[str, int] = {}
    for c in cells:
        if not c.measured:
            continue
        totals[c.workload] = totals.get(c.workload, 0) + 1
        bars = by_workload.setdefault(c.workload, [])
        if len(bars) >= MAX_CHART_ROWS:  # only the rows the chart shows
            continue
        bars.append(
            charts.Bar(
                label=f"{c.image} · {c.params_short}",
                value=c.step_s * 1000,
                lo=c.ci_lo_s * 1000,
                hi=c.ci_hi_s * 1000,
                series=int(c.image_index),
                note="⚠" if c.warnings else "",
            )
        )
    ci = f"{analysis.CONFIDENCE:.0%} CI over executions"
    out = []
    for wl, bars in sorted(by_workload.items()):
        per_call = wl in PER_CALL_WORKLOADS  # call_overhead's step is one call
        title = f"{wl}: steady-state {'time per call' if per_call else 'step time'}, {ci}"
        unit = "ms / call" if per_call else "ms / step"
        out.append(_capped(charts.bar_chart(bars, unit, title, images), len(bars), totals[wl]))
    return out


def _phase_chart(cells: list[Row]) -> Doc | None:
    ran = [c for c in cells if c.n_ok]
    if not ran:
        return None
    stacks = [  # only the rows the chart shows
        charts.Stack(
            label=f"{c.image} · {c.workload} · {c.params_short}",
            values=[c[f"phase_{p}"] for p in CHART_PHASES],
        )
        for c in ran[:MAX_CHART_ROWS]
    ]
    title = "phases per cell (mean over used executions, seconds)"
    svg = charts.stacked_bars(stacks, CHART_PHASES, "s", title)
    return _capped(svg, len(stacks), len(ran))


def _headlines(comparisons: list[Row]) -> list[Doc]:
    """Per workload: counts per compared image and the verdict lines (the largest ones if there are many)."""
    out: dict[str, list[Row]] = {}
    for row in comparisons:
        out.setdefault(row.workload, []).append(row)
    heads = []
    for wl, rows in sorted(out.items()):
        summary: dict[str, dict[str, int]] = {}
        for r in rows:
            counts = summary.setdefault(r.b_image, {k: 0 for k in (*analysis.KINDS, "suspect")})
            counts[r.kind] += 1
            counts["suspect"] += int(bool(r.quality_suspect))
        shown = rows
        if len(rows) > MAX_HEADLINES:
            shown = sorted(rows, key=lambda r: -abs(math.log(r.ratio)) if finite(r.ratio) else 0.0)[
                :MAX_HEADLINES
            ]
        heads.append({"workload": wl, "rows": rows, "shown": shown, "summary": sorted(summary.items())})
    return heads


def _environments(run: RunData, ana: AnalysisDoc) -> list[Doc]:
    """Per image: what the runtime reported (first ok record), the declared versions and image identity."""
    first: dict[str, Doc] = {}
    declared: dict[str, Doc] = {}
    styles: dict[str, set[str]] = {}
    for rec in run.records:
        cell = rec.get("cell") or {}
        image = str(cell.get("image", ""))
        declared.setdefault(
            image, {"declared": cell.get("declared") or {}, "runner": rec.get("runner") or {}}
        )
        payload = rec.get("payload")
        if rec.get("status") == "ok" and isinstance(payload, dict):
            first.setdefault(image, {**payload, "runner": rec.get("runner") or {}})
            if payload.get("api_style"):
                styles.setdefault(image, set()).add(str(payload["api_style"]))
    envs = []
    for image in ana.images:
        payload = first.get(image)
        decl = declared.get(image, {"declared": {}, "runner": {}})
        runtime = payload.get("runtime") if payload else None
        runtime = runtime if isinstance(runtime, dict) else {}
        packages = runtime.get("packages") if isinstance(runtime.get("packages"), dict) else {}
        envs.append(
            {
                "image": image,
                "ran": payload is not None,
                "runtime": {k: v for k, v in runtime.items() if k != "packages"},
                "packages": sorted((str(k), str(v)) for k, v in (packages or {}).items()),
                "api_styles": sorted(styles.get(image, set())),
                "declared": decl["declared"],
                "runner": (payload or decl)["runner"],
            }
        )
    return envs


def _history(doc: AnalysisDoc, history: Sequence[RunData]) -> Doc | None:
    """Trends and regressions against each earlier run's stored analysis."""
    earlier = [analysis.tables_of(stored.load(h)) for h in history if h.run_id != doc.run_id]
    if not earlier:
        return None
    ana = analysis.tables_of(doc)
    trends = analysis.history_trends(ana, earlier)
    regs = analysis.history_regressions(ana, earlier)
    status = dict(zip(regs["cell_id"], regs["status"], strict=True)) if len(regs) else {}
    cells = []
    ranked = sorted(trends["cell_id"].unique(), key=lambda c: (status.get(str(c)) != "regression", str(c)))
    shown = set(ranked[:MAX_TREND_CHARTS])
    for cell_id, grp in trends[trends["cell_id"].isin(shown)].groupby("cell_id", sort=True):
        flag = status.get(str(cell_id)) == "regression"
        points = [
            charts.Point(
                str(r["run_id"]),
                float(r["step_s"]) * 1000,
                float(r["ci_lo_s"]) * 1000,
                float(r["ci_hi_s"]) * 1000,
                flag=flag and r["run_id"] == ana.run_id,
            )
            for r in frame_rows(grp)
        ]
        cells.append(
            {
                "cell_id": str(cell_id),
                "status": status.get(str(cell_id), "new"),
                "chart": charts.trend_chart(points, str(cell_id), "ms"),
            }
        )
    return {
        "runs": [h.run_id for h in sorted(earlier, key=lambda a: a.run_id)],
        "regressions": frame_rows(regs),
        "n_regressions": int((regs["status"] == "regression").sum()) if len(regs) else 0,
        "cells": cells,
        "n_cells": len(ranked),
        "threshold_pct": analysis.HISTORY_THRESHOLD_PCT,
    }


def _drift(ana: AnalysisDoc) -> Doc | None:
    drift = ana.drift
    if not drift.points and not drift.n_failed:
        return None
    mm = [charts.Point(p.label, p.matmul_gflops, flag=p.flagged) for p in drift.points]
    loop = [charts.Point(p.label, p.loop_mops, flag=p.flagged) for p in drift.points]
    return {
        "points": drift.points,
        "n_failed": drift.n_failed,
        "peak_flops": drift.peak_flops,
        "flagged": drift.flagged_labels,
        "max_abs_drift_pct": drift.max_abs_drift_pct,
        "warn_pct": analysis.DRIFT_WARN_PCT,
        "matmul_chart": charts.trend_chart(mm, "probe float32 matmul (GFLOP/s)", "GFLOP/s", width=420),
        "loop_chart": charts.trend_chart(loop, "probe single-thread loop (Mops/s)", "Mops/s", width=420),
    }


def _adaptive(run: RunData, ana: AnalysisDoc) -> Doc | None:
    raw_settings = run.manifest.get("settings")
    settings: Doc = raw_settings if isinstance(raw_settings, dict) else {}
    target = settings.get("target_ci_pct")
    if not isinstance(target, int | float):
        return None
    raw_adaptive = run.manifest.get("adaptive")
    adaptive: Doc = raw_adaptive if isinstance(raw_adaptive, dict) else {}
    rows = []
    for r in ana.comparisons:
        hw = r.half_width_pct
        rows.append(
            {
                "label": f"{r.b_image} vs {r.a_image} · {r.workload} · {r.params_short}",
                "half_width_pct": hw,
                "reached": finite(hw) and hw <= target,
                "executions": f"{r.a_n_exec}/{r.b_n_exec}",
            }
        )
    return {
        "target": target,
        "max_repeats": settings.get("max_repeats"),
        "budget_s": settings.get("budget_s"),
        "rounds": adaptive.get("rounds") if adaptive else None,
        "stopped": adaptive.get("stopped") if adaptive else "run did not finish",
        "rows": rows,
        "n_reached": sum(1 for r in rows if r["reached"]),
    }


def _fit_tails(cells: list[Row]) -> list[Row]:
    return [
        c
        for c in cells
        if c.n_ok
        and finite(c.phase_fit_tail)
        and finite(c.phase_fit_total)
        and c.phase_fit_total > 0
        and c.phase_fit_tail > analysis.FIT_TAIL_WARN * c.phase_fit_total
    ]


#: how the public record's metrics read in the report
_METRIC_LABELS = {"step": "time per step or call (steady state)", "peak_rss": "peak host RSS"}


def metric_label(metric: str) -> str:
    if metric.startswith("phase:"):
        return f"phase {metric.split(':', 1)[1]}"
    return _METRIC_LABELS.get(metric, metric)


def _public_record(ana: AnalysisDoc) -> Doc:
    """The public record's claims with what this run measured, and how many got each verdict."""
    rows = model_rows(ana.public_record)
    counts: dict[str, int] = {}
    for row in rows:
        row["metric_label"] = metric_label(row.metric)
        row["measurements"] = [Row(m) for m in row.measurements]
        counts[row.verdict] = counts.get(row.verdict, 0) + 1
    return {"rows": rows, "counts": sorted(counts.items())}


def run_context(run: RunData, history: Sequence[RunData] = (), include_contended: bool = False) -> Doc:
    """Everything the run template needs, as plain values (strings from data stay unescaped here)."""
    ana = stored.load(run, include_contended=include_contended)
    cells = _cell_rows(ana)
    comparisons = model_rows(ana.comparisons)
    man = run.manifest
    return {
        "run_id": run.run_id,
        "manifest": man,
        "host": man.get("host") if isinstance(man.get("host"), dict) else {},
        "status_counts": sorted(ana.status_counts.items()),
        "n_records": ana.n_records,
        "baseline": ana.baseline,
        "images": ana.images,
        "headlines": _headlines(comparisons),
        "geomeans": model_rows(ana.geomeans),
        "comparisons": comparisons,
        "suspect": [r for r in comparisons if r.quality_suspect],
        "cells": cells,
        "measured": [c for c in cells if c["measured"]],
        "speed_charts": _speed_charts(cells, ana.images),
        "phase_chart": _phase_chart(cells),
        "phases": PHASES,
        "environments": _environments(run, ana),
        "problems": model_rows(ana.problems),
        "history": _history(ana, history),
        "definitions": ana.definitions,
        "margin_pct": f"{ana.margin_pct:g}",
        "include_contended": include_contended,
        "contended": model_rows(ana.contended),
        "n_contended_cells": sum(1 for c in ana.cells if c.n_contended > 0),
        "drift": _drift(ana),
        "adaptive": _adaptive(run, ana),
        "fit_tails": _fit_tails(cells),
        "fit_tail_warn": analysis.FIT_TAIL_WARN,
        "acc_tol": analysis.ACC_TOLERANCE,
        "public_record": _public_record(ana),
        "timeline": timeline_context(ana),
        "bisect": bisect_context(run),
    }
