"""Static HTML reports (Jinja2, autoescape on for every template): the only module that imports jinja2.

`render_run_report` writes `<reports>/<run-id>/index.html`, `render_site_index` writes `<reports>/index.html`.
Pages are self-contained (inline CSS, inline SVG charts, a few lines of inline JS for sortable tables) and
deterministic: nothing depends on the render time, so the same run renders byte-identical HTML.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup, escape

from harness import charts, stats
from harness.atomicfile import write_text
from harness.safenames import name_from
from harness.store import RunData

Doc = dict[str, Any]
DASH = "\u2013"  # shown for a missing number
#: charts stop after this many rows (tables always list everything)
MAX_CHART_ROWS = 150
#: trend charts per report (regressions first)
MAX_TREND_CHARTS = 200
#: verdict lines per workload in the headline (largest differences first when there are more)
MAX_HEADLINES = 12
#: the phases table leaves out interpreter start-up
PHASES = tuple(p for p in stats.PHASES if p != "interpreter")
#: phases stacked in the chart (fit_total/fit_tail overlap train_total and are shown in the table)
CHART_PHASES = ("import", "data", "build", "first_step", "train_total", "eval")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness", "templates"),
        autoescape=True,  # everything, whatever the template's extension
        undefined=jinja2.ChainableUndefined,  # partial documents render as blanks, never crash
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        ms=fmt_ms,
        num=fmt_num,
        pct=fmt_pct,
        bytes=fmt_bytes,
        flops=fmt_flops,
        ratio=fmt_ratio,
        sortkey=sort_key,
    )
    return env


# ------------------------------------------------------------------------------------------ formatting


def _ok(x: Any) -> bool:
    kind = type(x)
    if kind is float or kind is int:  # fast path for the common case; same answer as below
        return math.isfinite(x)
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def fmt_ms(seconds: Any) -> str:
    return f"{seconds * 1000:.3g} ms" if _ok(seconds) else DASH


def fmt_num(x: Any, digits: int = 3) -> str:
    if not _ok(x):
        return DASH
    return f"{x:,.0f}" if abs(x) >= 10 ** max(digits, 3) else format(x, _G_SPECS.get(digits) or f".{digits}g")


_G_SPECS = {d: f".{d}g" for d in range(1, 10)}


def fmt_pct(x: Any) -> str:
    return f"{x * 100:.1f}%" if _ok(x) else DASH


def fmt_bytes(x: Any) -> str:
    if not _ok(x):
        return "not available"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(x) < 1024 or unit == "TiB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return "not available"  # pragma: no cover


def fmt_flops(x: Any) -> str:
    if not _ok(x):
        return DASH
    for unit, scale in (("TFLOP/s", 1e12), ("GFLOP/s", 1e9), ("MFLOP/s", 1e6)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} FLOP/s"


def fmt_ratio(x: Any) -> str:
    return f"{x:.2f}{stats.TIMES}" if _ok(x) else DASH


def sort_key(x: Any) -> str:
    """Value for the data-sort attribute: numbers as repr, missing as empty."""
    return repr(float(x)) if _ok(x) else ""


# ------------------------------------------------------------------------------------------ view model


class Row(dict[str, Any]):
    """A record whose keys are also attributes (its __dict__ is itself), so Jinja's `row.x` is one lookup."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.__dict__ = self

    def __getattr__(self, name: str) -> Any:  # only reached for missing keys
        raise AttributeError(name)


def _rows(frame: Any) -> list[Row]:
    if frame is None or len(frame) == 0:
        return []
    cols = [str(c) for c in frame.columns]
    columns = [frame[c].tolist() for c in frame.columns]  # native Python values, column at a time (fast)
    return [Row(zip(cols, values, strict=True)) for values in zip(*columns, strict=True)]


def _cell_rows(ana: stats.RunAnalysis) -> list[Row]:
    st = ana.cells.stats.reset_index()
    order = {img: i for i, img in enumerate(ana.images)}
    st["image_index"] = st["image"].map(order).fillna(0).astype(int)
    st = st.sort_values(["workload", "params_key", "image_index"], kind="stable")
    return _rows(st)


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
    title = "{}: steady-state step time, " + f"{stats.CONFIDENCE:.0%} CI over executions"
    return [
        _capped(charts.bar_chart(bars, "ms / step", title.format(wl), images), len(bars), totals[wl])
        for wl, bars in sorted(by_workload.items())
    ]


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
            counts = summary.setdefault(r.b_image, {k: 0 for k in (*stats.KINDS, "suspect")})
            counts[r.kind] += 1
            counts["suspect"] += int(bool(r.quality_suspect))
        shown = rows
        if len(rows) > MAX_HEADLINES:
            shown = sorted(rows, key=lambda r: -abs(math.log(r.ratio)) if _ok(r.ratio) else 0.0)[
                :MAX_HEADLINES
            ]
        heads.append({"workload": wl, "rows": rows, "shown": shown, "summary": sorted(summary.items())})
    return heads


def _environments(run: RunData, ana: stats.RunAnalysis) -> list[Doc]:
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


def _history(ana: stats.RunAnalysis, history: Sequence[RunData]) -> Doc | None:
    earlier = [stats.analyse_run(h, margin_pct=ana.margin_pct) for h in history if h.run_id != ana.run_id]
    if not earlier:
        return None
    trends = stats.history_trends(ana, earlier)
    regs = stats.history_regressions(ana, earlier)
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
            for r in _rows(grp)
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
        "regressions": _rows(regs),
        "n_regressions": int((regs["status"] == "regression").sum()) if len(regs) else 0,
        "cells": cells,
        "n_cells": len(ranked),
        "threshold_pct": stats.HISTORY_THRESHOLD_PCT,
    }


def _drift(ana: stats.RunAnalysis) -> Doc | None:
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
        "warn_pct": stats.DRIFT_WARN_PCT,
        "matmul_chart": charts.trend_chart(mm, "probe float32 matmul (GFLOP/s)", "GFLOP/s", width=420),
        "loop_chart": charts.trend_chart(loop, "probe single-thread loop (Mops/s)", "Mops/s", width=420),
    }


def _adaptive(run: RunData, ana: stats.RunAnalysis) -> Doc | None:
    raw_settings = run.manifest.get("settings")
    settings: Doc = raw_settings if isinstance(raw_settings, dict) else {}
    target = settings.get("target_ci_pct")
    if not isinstance(target, int | float):
        return None
    raw_adaptive = run.manifest.get("adaptive")
    adaptive: Doc = raw_adaptive if isinstance(raw_adaptive, dict) else {}
    rows = []
    for r in _rows(ana.comparisons):
        hw = r.half_width_pct
        rows.append(
            {
                "label": f"{r.b_image} vs {r.a_image} · {r.workload} · {r.params_short}",
                "half_width_pct": hw,
                "reached": _ok(hw) and hw <= target,
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
        and _ok(c.phase_fit_tail)
        and _ok(c.phase_fit_total)
        and c.phase_fit_total > 0
        and c.phase_fit_tail > stats.FIT_TAIL_WARN * c.phase_fit_total
    ]


def run_context(run: RunData, history: Sequence[RunData] = (), include_contended: bool = False) -> Doc:
    """Everything the run template needs, as plain values (strings from data stay unescaped here)."""
    ana = stats.analyse_run(run, include_contended=include_contended)
    cells = _cell_rows(ana)
    comparisons = _rows(ana.comparisons)
    man = run.manifest
    n_status = ana.records.groupby("status").size().to_dict() if len(ana.records) else {}
    return {
        "run_id": run.run_id,
        "manifest": man,
        "host": man.get("host") if isinstance(man.get("host"), dict) else {},
        "status_counts": sorted((str(k), int(v)) for k, v in n_status.items()),
        "n_records": len(ana.records),
        "baseline": ana.baseline,
        "images": ana.images,
        "headlines": _headlines(comparisons),
        "geomeans": _rows(ana.geomeans),
        "comparisons": comparisons,
        "suspect": [r for r in comparisons if r.quality_suspect],
        "cells": cells,
        "measured": [c for c in cells if c["measured"]],
        "speed_rows": _speed_rows(c for c in cells if c["measured"]),
        "comparison_rows": _comparison_rows(comparisons),
        "memory_rows": _memory_rows(cells),
        "speed_charts": _speed_charts(cells, ana.images),
        "phase_chart": _phase_chart(cells),
        "phases": PHASES,
        "environments": _environments(run, ana),
        "problems": _rows(ana.problems),
        "history": _history(ana, history),
        "definitions": stats.definitions(ana.margin_pct),
        "margin_pct": f"{ana.margin_pct:g}",
        "include_contended": include_contended,
        "contended": _rows(ana.contended),
        "n_contended_cells": int((ana.cells.stats["n_contended"] > 0).sum()) if len(ana.cells.stats) else 0,
        "drift": _drift(ana),
        "adaptive": _adaptive(run, ana),
        "fit_tails": _fit_tails(cells),
        "fit_tail_warn": stats.FIT_TAIL_WARN,
        "acc_tol": stats.ACC_TOLERANCE,
    }


# ------------------------------------------------------------------------------------------ big tables

# The per-cell tables have one row per cell (thousands in a large run). Rendering them cell by cell in Jinja
# costs a template expression, a filter call and an `escape` per value, which dominated the report time, so
# their rows are built here as markup instead: every value goes through `markupsafe.escape` (the function
# Jinja's autoescape uses), and the result is `Markup` that the templates insert without `|safe`. The row
# markup below is exactly what the former template loops produced.


def _escaper() -> Callable[[Any], str]:
    """`str(markupsafe.escape(value))`, remembering strings already escaped (labels repeat a lot)."""
    memo: dict[str, str] = {}

    def esc(value: Any) -> str:
        if type(value) is not str:
            return str(escape(value))
        try:
            return memo[value]
        except KeyError:
            text = memo[value] = str(escape(value))
            return text

    return esc


def _speed_rows(cells: Iterable[Row]) -> Markup:
    e = _escaper()
    out = []
    for c in cells:
        warnings = c.warnings
        flag = f' <span class="warn" title="{e(warnings)}">\u26a0</span>' if warnings else ""
        cv = c.cv
        out.append(
            f'<tr>\n<td><span title="{e(c.cell_id)}">{e(c.image)} \u00b7 {e(c.workload)} \u00b7 '
            f"{e(c.params_short)}</span></td>\n<td><small>{e(c.label)}</small></td>\n"
            f'<td class="n">{e(c.n_used)} / {e(c.n_contended)} / {e(c.n_rerun)}</td>\n'
            f'<td class="n">{e(fmt_num(c.n_samples))}</td>\n'
            f'<td class="n">{e(fmt_ms(c.step_s))}{flag}<br><small class="muted">'
            f"[{e(fmt_ms(c.ci_lo_s))}, {e(fmt_ms(c.ci_hi_s))}]</small></td>\n"
            f'<td class="n">{e(fmt_ms(c.cpu_per_step_s))}</td>\n'
            f'<td class="n{" warn" if c.exec_cv >= 0.1 else ""}">{e(fmt_pct(c.exec_cv))}</td>\n'
            f'<td class="n{" warn" if cv >= 0.1 else ""}">{e(fmt_pct(cv))}</td>\n'
            f'<td class="n">{e(fmt_num(c.throughput, 4))}<br><small class="muted">'
            f"[{e(fmt_num(c.throughput_ci_lo, 4))}, {e(fmt_num(c.throughput_ci_hi, 4))}]</small></td>\n"
            f'<td class="n" data-sort="{e(sort_key(c.achieved_flops))}">'
            f"{e(fmt_flops(c.achieved_flops))}</td>\n"
            f'<td class="n">{e(fmt_ms(c.overhead_s))} ({e(fmt_pct(c.overhead_frac))})</td>\n'
            f'<td class="warn">{e(warnings)}</td>\n</tr>\n'
        )
    return Markup("".join(out))


def _comparison_rows(comparisons: Iterable[Row]) -> Markup:
    e = _escaper()
    out = []
    for r in comparisons:
        out.append(
            f'<tr>\n<td>{e(r.workload)}</td><td title="{e(r.params_label)}">{e(r.params_short)}</td>'
            f'<td>{e(r.a_image)} <span class="muted">({e(r.a_api_style or "?")})</span></td>'
            f'<td>{e(r.b_image)} <span class="muted">({e(r.b_api_style or "?")})</span></td>\n'
            f'<td class="n">{e(fmt_ms(r.a_step_s))}</td>\n<td class="n">{e(fmt_ms(r.b_step_s))}</td>\n'
            f'<td class="n">{e(fmt_ratio(r.ratio))} '
            f"[{e(fmt_num(r.ratio_lo))}, {e(fmt_num(r.ratio_hi))}]</td>\n"
            f'<td class="n">{e(r.a_n_exec)}/{e(r.b_n_exec)}</td>\n'
            f'<td class="n">{e(fmt_num(r.p, 2))}</td>\n'
            f'<td class="verdict {e(r.kind)}">{e(r.verdict)}</td>\n'
            f'<td class="warn">{e(r.warnings)}</td>\n</tr>\n'
        )
    return Markup("".join(out))


def _memory_rows(cells: Iterable[Row]) -> Markup:
    e = _escaper()
    keys = [f"phase_{p}" for p in PHASES]
    out = []
    for c in cells:
        if not c.n_ok:
            continue
        phases = "".join(f'<td class="n">{e(fmt_num(c[k]))}</td>' for k in keys)
        out.append(
            f'<tr><td><span title="{e(c.cell_id)}">{e(c.image)} \u00b7 {e(c.workload)} \u00b7 '
            f"{e(c.params_short)}</span></td><td><small>{e(c.label)}</small></td>\n{phases}"
            f'<td class="n" data-sort="{e(sort_key(c.host_peak_rss_bytes))}">'
            f"{e(fmt_bytes(c.host_peak_rss_bytes))}</td>\n"
            f'<td class="n" data-sort="{e(sort_key(c.container_peak_bytes))}">'
            f"{e(fmt_bytes(c.container_peak_bytes))}</td>\n"
            f'<td class="n">{e(fmt_num(c.cpu_time_s))}</td>\n'
            f'<td class="n">{e(fmt_num(c.others_cores_mean, 2))} / {e(fmt_num(c.others_cores_max, 2))}</td>\n'
            f'<td class="n" data-sort="{e(sort_key(c.gpu_peak_bytes))}">'
            f"{e(fmt_bytes(c.gpu_peak_bytes))}</td>\n"
            f'<td class="muted">{e(c.gpu_peak_note or "")}</td>\n'
            f'<td class="n">{e(fmt_num(c.final_loss, 4))}</td>'
            f'<td class="n">{e(fmt_num(c.final_accuracy, 4))}</td></tr>\n'
        )
    return Markup("".join(out))


# ------------------------------------------------------------------------------------------ rendering


def render_run_html(run: RunData, history: Sequence[RunData] = (), include_contended: bool = False) -> str:
    return environment().get_template("run.html.j2").render(run_context(run, history, include_contended))


def render_run_report(
    run: RunData, out_dir: Path, history: Sequence[RunData] = (), include_contended: bool = False
) -> Path:
    """Write `<out_dir>/<run-id>/index.html` (self-contained) and return its path."""
    path = out_dir / name_from(run.run_id) / "index.html"
    write_text(path, render_run_html(run, history, include_contended))
    return path


def site_entries(runs: Iterable[RunData]) -> list[Doc]:
    entries = []
    for run in sorted(runs, key=lambda r: r.run_id, reverse=True):
        ana = stats.analyse_run(run)
        counts = ana.records.groupby("status").size().to_dict() if len(ana.records) else {}
        entries.append(
            {
                "run_id": run.run_id,
                "href": quote(name_from(run.run_id)) + "/index.html",
                "profile": run.manifest.get("profile"),
                "started_at": run.manifest.get("started_at"),
                "finished_at": run.manifest.get("finished_at"),
                "images": ana.images,
                "counts": sorted((str(k), int(v)) for k, v in counts.items()),
                "baseline": ana.baseline,
                "geomeans": _rows(ana.geomeans),
            }
        )
    return entries


def render_site_index(reports_dir: Path, runs: list[RunData]) -> Path:
    """Write `<reports_dir>/index.html` listing runs newest first with headline numbers."""
    html = environment().get_template("index.html.j2").render(entries=site_entries(runs))
    path = reports_dir / "index.html"
    write_text(path, html)
    return path
