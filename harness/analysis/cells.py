"""Per-cell statistics: executions are the unit, windows only measure each execution's median."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.estimators import (
    FloatArray,
    bootstrap_medians,
    expanded_confidence,
    hierarchical_means,
    percentile_interval,
)
from harness.analysis.frame import PHASES, params_key, params_label, samples_frame, used_mask
from harness.matrix.params import PER_CALL_WORKLOADS

CV_WARN = 0.10
MOD_Z_OUTLIER = 3.5
MIN_SAMPLES = 5
MIN_REPEATS = 3


@dataclass
class CellTable:
    """Per-cell statistics (index: cell_id) plus what comparisons need: each measured cell's per-execution
    medians and the hierarchical bootstrap distribution of its step time."""

    stats: pd.DataFrame
    executions: dict[str, FloatArray]
    boot: dict[str, FloatArray]


def _pooled(samples: pd.DataFrame) -> pd.DataFrame:
    """Descriptive statistics over all windows of a cell (not used for intervals or tests)."""
    step = samples["step_s"]
    g = step.groupby(samples["cell_id"], sort=True)
    out = pd.DataFrame(
        {
            "n_samples": g.size(),
            "median_s": g.median(),
            "mean_s": g.mean(),
            "q1_s": g.quantile(0.25),
            "q3_s": g.quantile(0.75),
            "std_s": g.std(ddof=1),
        }
    )
    out["iqr_s"] = out["q3_s"] - out["q1_s"]
    out["cv"] = out["std_s"] / out["mean_s"]
    med = g.transform("median")
    absdev = (step - med).abs()
    mad = absdev.groupby(samples["cell_id"]).transform("median")
    with np.errstate(all="ignore"):
        modz = 0.6745 * absdev / mad.where(mad > 0)
    out["n_outliers"] = (modz > MOD_Z_OUTLIER).groupby(samples["cell_id"]).sum()
    out.index.name = "cell_id"
    return out


def _record_aggregates(rec: pd.DataFrame, include_contended: bool) -> pd.DataFrame:
    g_all = rec.groupby("cell_id", sort=True)
    ok = rec[rec["status"] == "ok"]
    used = rec[used_mask(rec, include_contended)]
    g = used.groupby("cell_id", sort=True)
    agg: dict[str, Any] = {
        "n_ok": ok.groupby("cell_id").size(),
        "n_used": g.size(),
        "n_contended": ok[ok["contended"]].groupby("cell_id").size(),
        "n_rerun": rec[rec["rerun"]].groupby("cell_id").size(),
        "contention_reasons": ok[ok["contended"]].groupby("cell_id")["contention_reasons"].first(),
        "batch_size": g_all["batch_size"].first(),
        "host_peak_rss_bytes": g["host_peak_rss_bytes"].max(),
        "gpu_peak_bytes": g["gpu_peak_bytes"].max(),
        "container_peak_bytes": g["tel_container_peak_bytes"].max(),
        "cpu_time_s": g["tel_cpu_time_s"].mean(),
        "cpu_cores_mean": g["tel_cpu_cores_mean"].mean(),
        "others_cores_mean": g["tel_others_cores_mean"].mean(),
        "others_cores_max": g["tel_others_cores_max"].max(),
        "steal_pct": g["tel_steal_pct"].max(),
        "throttled_s": g["tel_throttled_s"].sum(min_count=1),
        "cpu_per_step_s": g["cpu_per_step_s"].median(),
        "final_loss": g["final_loss"].median(),
        "final_accuracy": g["final_accuracy"].median(),
        "flops_per_sample_train": g_all["flops_per_sample_train"].first(),
        "tf_version": ok.groupby("cell_id")["tf_version"].first(),
        "api_style": ok.groupby("cell_id")["api_style"].first(),
        "gpu_peak_note": ok.groupby("cell_id")["gpu_peak_note"].first(),
    }
    for phase in PHASES:
        agg[f"phase_{phase}"] = g[f"phase_{phase}"].mean()
    out = pd.DataFrame(agg)
    for col in ("n_ok", "n_used", "n_contended", "n_rerun"):
        out[col] = out[col].fillna(0).astype(int)
    return out


def _cell_identity(rec: pd.DataFrame) -> pd.DataFrame:
    g = rec.groupby("cell_id", sort=True)
    ident = g[["image", "device", "workload", "declared_tf"]].first()
    params = g["params"].first()
    ident["params_key"] = [params_key(p) for p in params]
    ident["params_label"] = [params_label(p) for p in params]
    ident["n_records"] = g.size()
    ident["image_tag"] = g["image_tag"].first()
    ident["image_id"] = g["image_id"].first()
    return ident


def _key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def _cell_bootstrap(windows: list[FloatArray], seed: int, run: str, cell_id: str) -> FloatArray:
    """One cell's two-level bootstrap distribution, from a generator seeded by the seed, the run and the
    cell id: a cell's CI depends on its own executions only, not on which other cells the run holds; the
    same cell of another run draws independently (cross-run ratio CIs divide independent bootstraps)."""
    key = [seed, _key(run), _key(cell_id)]
    exec_boot = bootstrap_medians(windows, key)
    out: FloatArray = hierarchical_means([list(range(len(windows)))], exec_boot, [*key, 7])[0]
    return out


def _execution_level(
    samples: pd.DataFrame, seed: int, run: str
) -> tuple[pd.DataFrame, dict[str, FloatArray], dict[str, FloatArray]]:
    """Per cell: the executions' medians, the step-time estimate (their mean) and its CI."""
    columns = ["step_s", "ci_lo_s", "ci_hi_s", "n_exec", "exec_cv"]
    if samples.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="cell_id"), dtype=float), {}, {}
    keys = samples[["cell_id", "execution"]].drop_duplicates().reset_index(drop=True)
    bounds = np.flatnonzero(
        np.r_[True, (samples["execution"].to_numpy()[1:] != samples["execution"].to_numpy()[:-1])]
    )
    values = samples["step_s"].to_numpy(dtype=float)
    ends = np.r_[bounds[1:], len(values)]
    windows = [values[a:b] for a, b in zip(bounds, ends, strict=True)]
    exec_medians = np.asarray([float(np.median(w)) for w in windows], dtype=float)
    rows_of: dict[str, list[int]] = {}
    for i, cell in enumerate(keys["cell_id"]):
        rows_of.setdefault(str(cell), []).append(i)
    cells = sorted(rows_of)
    boot = np.stack([_cell_bootstrap([windows[r] for r in rows_of[c]], seed, run, c) for c in cells])
    table: dict[str, list[float]] = {c: [] for c in columns}
    executions: dict[str, FloatArray] = {}
    boots: dict[str, FloatArray] = {}
    for i, cell in enumerate(cells):
        meds = exec_medians[rows_of[cell]]
        lo, hi = percentile_interval(boot[i], expanded_confidence(len(meds)))
        table["step_s"].append(float(meds.mean()))
        table["ci_lo_s"].append(lo)
        table["ci_hi_s"].append(hi)
        table["n_exec"].append(len(meds))
        table["exec_cv"].append(float(meds.std(ddof=1) / meds.mean()) if len(meds) > 1 else math.nan)
        executions[cell] = meds
        boots[cell] = boot[i]
    frame = pd.DataFrame(table, index=pd.Index(cells, name="cell_id"))
    return frame, executions, boots


def _warning_text(row: dict[Any, Any]) -> str:
    exec_cv, cv = float(row["exec_cv"]), float(row["cv"])
    n_exec, n_samples = int(row["n_exec"]), int(row["n_samples"])
    n_outliers, n_contended = int(row["n_outliers"]), int(row["n_contended"])
    parts = []
    if exec_cv >= CV_WARN:
        parts.append(f"executions vary {exec_cv:.0%}")
    if cv >= CV_WARN:
        parts.append(f"windows vary {cv:.0%}")
    if n_outliers:
        parts.append(f"{n_outliers} outlier window(s)")
    if n_exec < MIN_REPEATS:
        parts.append(f"too few executions ({n_exec})")
    elif n_samples < MIN_SAMPLES:
        parts.append("too few samples")
    if n_contended:
        parts.append(f"{n_contended} contended execution(s) excluded")
    return "; ".join(parts)


def _warnings_column(stats: pd.DataFrame) -> pd.Series:
    cols = ["exec_cv", "cv", "n_exec", "n_samples", "n_outliers", "n_contended"]
    filled = stats[cols].fillna({"n_samples": 0, "n_outliers": 0, "n_exec": 0, "n_contended": 0})
    texts = [_warning_text(row) for row in filled.to_dict("records")]
    return pd.Series(texts, index=stats.index, dtype=str)


def cell_table(rec: pd.DataFrame, seed: int = 0, include_contended: bool = False, run: str = "") -> CellTable:
    """Aggregate records: one row per cell with speed (execution level), noise, phases, memory, quality.
    `run` (the run id) keys the bootstrap with the seed and each cell id."""
    samples = samples_frame(rec, include_contended)
    stats = _cell_identity(rec)
    stats = stats.join(_record_aggregates(rec, include_contended)).join(_pooled(samples))
    level, executions, boot = _execution_level(samples, seed, run)
    stats = stats.join(level)
    for col in ("n_ok", "n_used", "n_contended", "n_rerun"):
        stats[col] = stats[col].fillna(0).astype(int)
    stats["n_exec"] = stats["n_exec"].fillna(0).astype(int)
    stats["measured"] = stats["n_exec"] > 0
    per_call = stats["workload"].isin(PER_CALL_WORKLOADS)
    units = stats["batch_size"].where(~per_call, 1.0)  # samples per step, or one call
    stats["throughput"] = units / stats["step_s"]
    stats["throughput_ci_lo"] = units / stats["ci_hi_s"]
    stats["throughput_ci_hi"] = units / stats["ci_lo_s"]
    stats["rate_unit"] = np.where(per_call, "calls/s", "samples/s")
    _add_flops(stats)
    stats["warnings"] = _warnings_column(stats).where(stats["measured"], "")
    stats["label"] = runtime_labels(stats)
    stats["params_short"] = short_params(stats)
    return CellTable(stats=stats, executions=executions, boot=boot)


def _add_flops(stats: pd.DataFrame, peak_flops: float | None = None) -> None:
    """Achieved FLOP/s; overhead against the calibration probe's measured peak when there is one, else
    against the best cell on the same device in this run."""
    stats["achieved_flops"] = stats["flops_per_sample_train"] * (stats["batch_size"] / stats["step_s"])
    best = stats.groupby("device")["achieved_flops"].transform("max")
    ref = (
        best
        if peak_flops is None or not math.isfinite(peak_flops)
        else pd.Series(peak_flops, index=stats.index)
    )
    stats["peak_flops_ref"] = ref
    step_flops = stats["flops_per_sample_train"] * stats["batch_size"]
    overhead = stats["step_s"] - step_flops / ref
    stats["overhead_s"] = overhead.where(overhead.isna() | (overhead > stats["step_s"] * 1e-9), 0.0)
    stats["overhead_frac"] = stats["overhead_s"] / stats["step_s"]


def use_peak(stats: pd.DataFrame, peak_flops: float | None) -> None:
    """Recompute the FLOP/s-vs-peak columns against a measured peak (the calibration probe)."""
    _add_flops(stats, peak_flops)


def short_params(stats: pd.DataFrame) -> pd.Series:
    """Only the params that vary between cells of the same workload (e.g. 'input=numpy'), for labels."""
    keys = stats["params_key"].drop_duplicates()
    parsed = {k: json.loads(k) for k in keys}
    varying: dict[str, list[str]] = {}
    for workload, grp in stats.groupby("workload")["params_key"]:
        dicts = [parsed[k] for k in grp.unique()]
        names = sorted({n for d in dicts for n in d})
        varying[str(workload)] = [n for n in names if len({json.dumps(d.get(n)) for d in dicts}) > 1]
    labels = []
    for workload, key in zip(stats["workload"], stats["params_key"], strict=True):
        params = parsed[key]
        names = varying.get(str(workload)) or (["batch_size"] if "batch_size" in params else [])
        labels.append(", ".join(f"{n}={params.get(n)}" for n in names) or "default")
    return pd.Series(labels, index=stats.index, dtype=str)


def runtime_labels(stats: pd.DataFrame) -> pd.Series:
    """'TF 2.15.1 · tf1-graph API' from what the runtime reported; declared version only when never run."""
    tf = stats["tf_version"].astype(object)
    api = stats["api_style"].astype(object)
    ran = "TF " + tf.astype(str) + " · " + api.fillna("unknown").astype(str) + " API"
    declared = "TF " + stats["declared_tf"].astype(str) + " (declared; not run)"
    return pd.Series(np.where(tf.notna(), ran, declared), index=stats.index, dtype=str)
