"""Statistics over cell records: the only module that imports pandas (and scipy).

Definitions (also printed in the HTML report, see `DEFINITIONS`):

* A *sample* is one steady-state window: the mean step time over `window_steps` steps after `warmup_steps`
  (`payload.steps.step_time_s`). Samples of all repeats of a cell are pooled.
* Median / mean / IQR / CV are over the pooled samples. Throughput is batch_size / step time, so its median is
  batch_size / median step time exactly.
* 95% CI: percentile bootstrap of the median over the pooled samples (seeded, BOOTSTRAP_RESAMPLES resamples).
* A ratio is B's median step time / A's median step time (> 1: B is slower). Its CI comes from independent
  bootstraps of both medians. Significance: two-sided Mann-Whitney U on the pooled samples, p < `ALPHA`, *and*
  the ratio CI excludes 1. Windows of one repeat are not independent, so p-values are optimistic; the
  between-repeat spread is reported separately (repeat CV) and warned about.
* Achieved FLOP/s = flops_per_sample_train x median throughput. Framework overhead per step = median step time
  - step FLOPs / best achieved FLOP/s on that device in this run (the most efficient cell stands in for the
  attainable compute rate; clipped at 0). It is an estimate of time not spent on arithmetic, not a profile.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from harness.store import RunData

Doc = dict[str, Any]
FloatArray = np.ndarray[Any, np.dtype[np.float64]]

BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95
ALPHA = 0.05
CV_WARN = 0.10
MOD_Z_OUTLIER = 3.5
MIN_SAMPLES = 5
MIN_REPEATS = 3
ACC_TOLERANCE = 0.05
LOSS_REL_TOLERANCE = 0.25
HISTORY_THRESHOLD_PCT = 5.0
PHASES = ("interpreter", "import", "data", "build", "first_step", "train_total", "eval")
TF1_API_STYLES = frozenset({"tf1-graph"})
TIMES = "\u00d7"  # multiplication sign, as in "2.9x"

DEFINITIONS: dict[str, str] = {
    "sample": "one steady-state window: mean step time over window_steps steps after the warm-up; "
    "samples of all repeats of a cell are pooled",
    "ci": f"{CONFIDENCE:.0%} percentile bootstrap of the median ({BOOTSTRAP_RESAMPLES} seeded resamples)",
    "ratio": "B median step time / A median step time (> 1: B slower); "
    "CI from independent bootstraps of both",
    "significance": f"two-sided Mann-Whitney U on pooled samples, p < {ALPHA} and ratio CI excluding 1; "
    "windows within a repeat are correlated, so p-values are optimistic - check the repeat CV",
    "noise": f"CV >= {CV_WARN:.0%}, outliers with modified Z-score > {MOD_Z_OUTLIER}, "
    f"fewer than {MIN_SAMPLES} samples or {MIN_REPEATS} repeats",
    "flops": "achieved FLOP/s = flops_per_sample_train x median throughput",
    "overhead": "median step time - (flops_per_sample_train x batch_size) / best achieved FLOP/s on the same "
    "device in this run, clipped at 0: an estimate of per-step time not spent on arithmetic",
    "quality": f"quality parity fails when |final accuracy - baseline| > {ACC_TOLERANCE} or "
    f"|final loss - baseline| > {LOSS_REL_TOLERANCE:.0%} of the baseline loss",
    "history": f"regression: median more than {HISTORY_THRESHOLD_PCT:g}% slower than the previous run "
    "with the same cell and the CIs do not overlap",
}


# ------------------------------------------------------------------------------------------ flattening


def params_key(params: Any) -> str:
    """Canonical text of a cell's params: the pairing key across images."""
    return json.dumps(params if isinstance(params, dict) else {}, sort_keys=True, default=str)


def params_label(params: Any) -> str:
    if not isinstance(params, dict):
        return ""
    return ", ".join(f"{k}={params[k]}" for k in sorted(params))


def _num(value: Any) -> float:
    kind = type(value)
    if kind is float or kind is int:
        return float(value)
    return float(value) if isinstance(value, int | float) and kind is not bool else math.nan


def _sub(doc: Doc, key: str) -> Doc:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


_PHASE_COLUMNS = tuple((phase, f"phase_{phase}") for phase in PHASES)


def _record_row(rec: Doc) -> Doc:
    # Hot loop (one call per record): `_sub` and `_num` are inlined for dicts and plain floats.
    cell = rec.get("cell")
    cell = cell if isinstance(cell, dict) else {}
    runner = rec.get("runner")
    runner = runner if isinstance(runner, dict) else {}
    params = cell.get("params")
    payload = rec.get("payload")
    row: Doc = {
        "run_id": str(rec.get("run_id", "")),
        "cell_id": str(rec.get("cell_id", "")),
        "repeat": int(rec.get("repeat") or 0),
        "status": str(rec.get("status", "")),
        "reason": rec.get("reason"),
        "exit_code": rec.get("exit_code"),
        "log_tail": str(rec.get("log_tail") or ""),
        "image": str(cell.get("image", "")),
        "device": str(cell.get("device", "")),
        "workload": str(cell.get("workload", "")),
        "params": params if isinstance(params, dict) else {},
        "declared_tf": str(_sub(cell, "declared").get("tf") or ""),
        "image_tag": runner.get("image_tag"),
        "image_id": runner.get("image_id"),
        "samples": [],
        "batch_size": _num(params.get("batch_size")) if isinstance(params, dict) else math.nan,
    }
    if not isinstance(payload, dict):
        return row
    get = payload.get
    steps = _sub(payload, "steps").get("step_time_s")
    row["samples"] = steps if isinstance(steps, list) else []
    spec_bs = _num(_sub(payload, "spec").get("batch_size"))
    if not math.isnan(spec_bs):
        row["batch_size"] = spec_bs
    row["tf_version"] = _sub(payload, "runtime").get("tf_version")
    row["api_style"] = get("api_style")
    phases = get("phases_s")
    if not isinstance(phases, dict):
        phases = {}
    for phase, column in _PHASE_COLUMNS:
        value = phases.get(phase)
        row[column] = value if type(value) is float else _num(value)
    memory = _sub(payload, "memory")
    row["host_peak_rss_bytes"] = _num(memory.get("host_peak_rss_bytes"))
    row["gpu_peak_bytes"] = _num(memory.get("gpu_peak_bytes"))
    row["gpu_peak_note"] = memory.get("gpu_peak_note")
    quality = _sub(payload, "quality")
    row["final_loss"] = _num(quality.get("final_loss"))
    row["final_accuracy"] = _num(quality.get("final_accuracy"))
    row["flops_per_sample_train"] = _num(_sub(payload, "model").get("flops_per_sample_train"))
    return row


def records_frame(records: Iterable[Doc]) -> pd.DataFrame:
    """One row per record (cell x repeat) with the fields the report needs, flattened."""
    df = pd.DataFrame.from_records([_record_row(r) for r in records])
    if df.empty:
        df = pd.DataFrame.from_records([_record_row({})]).iloc[0:0]
    for col in ("tf_version", "api_style", "gpu_peak_note"):
        if col not in df:
            df[col] = None
    for col in (
        *(f"phase_{p}" for p in PHASES),
        "host_peak_rss_bytes",
        "gpu_peak_bytes",
        "final_loss",
        "final_accuracy",
        "flops_per_sample_train",
    ):
        if col not in df:
            df[col] = math.nan
    return df


def samples_frame(rec: pd.DataFrame) -> pd.DataFrame:
    """One row per steady-state sample of an ok record: cell_id, repeat, step_s (sorted by cell_id)."""
    cell_codes, cell_ids = pd.factorize(rec["cell_id"].astype(str), sort=True)
    return _samples(rec, cell_codes, pd.Index(cell_ids))[0]


def _samples(rec: pd.DataFrame, cell_codes: Any, cell_ids: pd.Index) -> tuple[pd.DataFrame, Any]:
    """`samples_frame` plus each sample's cell as a code into `cell_ids` (the sorted cell ids of `rec`, with
    `cell_codes` the code of each record): the statistics group by these integers instead of hashing the
    cell-id strings again for every aggregate. Samples keep their order within a cell (stable sort)."""
    ok = (rec["status"] == "ok").to_numpy(dtype=bool)
    lists = [v if isinstance(v, list) else [v] for v in rec["samples"].to_numpy()[ok]]
    lengths = np.fromiter((len(v) for v in lists), dtype=np.intp, count=len(lists))
    flat = pd.Series([x for v in lists for x in v], dtype=object)
    step = pd.to_numeric(flat, errors="coerce").to_numpy(dtype=float)
    codes = np.repeat(np.asarray(cell_codes)[ok], lengths)
    repeat = np.repeat(rec["repeat"].to_numpy()[ok].astype(int), lengths)
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(step) & (step > 0)
    order = np.argsort(codes[keep], kind="stable")
    codes = codes[keep][order]
    out = pd.DataFrame(
        {
            "cell_id": pd.Series(cell_ids.take(codes), dtype=rec["cell_id"].astype(str).dtype),
            "repeat": repeat[keep][order],
            "step_s": step[keep][order],
        }
    )
    return out, codes


# ------------------------------------------------------------------------------------------ bootstrap


def bootstrap_medians(
    groups: Sequence[FloatArray], seed: int, n_boot: int = BOOTSTRAP_RESAMPLES
) -> FloatArray:
    """Bootstrap distributions of the median, one row per group (shape: len(groups) x n_boot).

    Exact percentile bootstrap, computed without materialising the resamples: once a group is sorted, the
    median of a resample drawn with indices `idx` is x[sorted(idx)[mid]] (the mean of the two middle ones for
    even n), because x is monotone in its index. So one index matrix per sample size serves every group of
    that size in O(groups x n_boot). Each group is an ordinary bootstrap of its own samples; groups of equal
    size share resample indices (see `compare_pairs` for how ratios decouple them). Deterministic per seed.
    """
    out: FloatArray = np.full((len(groups), n_boot), np.nan)
    by_size: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        by_size.setdefault(len(g), []).append(i)
    rng = np.random.default_rng(seed)
    for n in sorted(by_size):
        rows = by_size[n]
        if n == 0:
            continue
        idx = np.sort(rng.integers(0, n, size=(n_boot, n)), axis=1)
        lo_pos, hi_pos = idx[:, (n - 1) // 2], idx[:, n // 2]
        xs = np.sort(np.stack([groups[i] for i in rows]), axis=1)
        med = xs[:, lo_pos]  # (lo + hi) / 2, computed in place
        med += xs[:, hi_pos]
        med /= 2
        out[rows] = med
    return out


def percentile_ci(boot: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The CI percentiles along the last axis: bit-identical to `np.percentile(boot, [tail, 100 - tail],
    axis=-1)` (method "linear", NaN for rows holding a NaN), but computed from one contiguous row sort, which
    is several times faster than numpy's partition along a moved axis for thousands of rows."""
    tail = (1 - CONFIDENCE) / 2 * 100
    if not boot.size:
        return np.empty(boot.shape[:-1]), np.empty(boot.shape[:-1])
    n = boot.shape[-1]
    # numpy's steps for method="linear": virtual index (n - 1) q, its floor and the next index (both clipped
    # to the last element at the top), gamma = virtual index - floor, then `_lerp`.
    q = np.true_divide(np.asarray([tail, 100 - tail], dtype=float), 100)
    virtual = (n - 1) * q
    prev = np.floor(virtual)
    nxt = prev + 1
    prev[virtual >= n - 1] = -1
    nxt[virtual >= n - 1] = -1
    prev[virtual < 0] = 0
    nxt[virtual < 0] = 0
    prev_i, next_i = prev.astype(np.intp), nxt.astype(np.intp)
    gamma = virtual - prev_i
    ordered = np.sort(boot, axis=-1)  # NaNs sort last
    out: list[FloatArray] = []
    with np.errstate(all="ignore"):
        for k in range(2):
            a, b, t = ordered[..., prev_i[k]], ordered[..., next_i[k]], gamma[k]
            diff = b - a
            value = b - diff * (1 - t) if t >= 0.5 else a + diff * t
            out.append(np.where(np.isnan(ordered[..., -1]), ordered[..., -1], value))
    return np.asarray(out[0], dtype=float), np.asarray(out[1], dtype=float)


def bootstrap_median_ci(values: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """Median and its bootstrap CI of one sample (convenience for tests and small callers)."""
    arr = np.asarray(values, dtype=float)
    boot = bootstrap_medians([arr], seed)
    lo, hi = percentile_ci(boot)
    return float(np.median(arr)), float(lo[0]), float(hi[0])


# ------------------------------------------------------------------------------------------ cells


@dataclass
class CellTable:
    """Per-cell statistics (index: cell_id) plus what comparisons need: samples and bootstrap medians."""

    stats: pd.DataFrame
    samples: dict[str, FloatArray]
    boot: dict[str, FloatArray]


def _sample_stats(samples: pd.DataFrame, codes: Any, cell_ids: pd.Index) -> pd.DataFrame:
    """Per-cell sample statistics; `codes` gives each sample's cell as a position in `cell_ids` (sorted)."""
    step = samples["step_s"]
    g = step.groupby(codes, sort=True)
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
    mad = absdev.groupby(codes).transform("median")
    with np.errstate(all="ignore"):
        modz = 0.6745 * absdev / mad.where(mad > 0)
    out["n_outliers"] = (modz > MOD_Z_OUTLIER).groupby(codes).sum()
    rep = step.groupby([codes, samples["repeat"].to_numpy()], sort=True).median().groupby(level=0)
    out["n_repeats_measured"] = rep.size()
    out["repeat_cv"] = rep.std(ddof=1) / rep.mean()
    out.index = pd.Index(cell_ids.take(out.index.to_numpy()), name="cell_id")
    return out


def _record_aggregates(rec: pd.DataFrame) -> pd.DataFrame:
    ok = rec[rec["status"] == "ok"]
    g = ok.groupby("cell_id", sort=True)
    agg: dict[str, Any] = {
        "n_ok": g.size(),
        "batch_size": g["batch_size"].first(),
        "host_peak_rss_bytes": g["host_peak_rss_bytes"].max(),
        "gpu_peak_bytes": g["gpu_peak_bytes"].max(),
        "final_loss": g["final_loss"].median(),
        "final_accuracy": g["final_accuracy"].median(),
        "flops_per_sample_train": g["flops_per_sample_train"].first(),
        "tf_version": g["tf_version"].first(),
        "api_style": g["api_style"].first(),
        "gpu_peak_note": g["gpu_peak_note"].first(),
    }
    for phase in PHASES:
        agg[f"phase_{phase}"] = g[f"phase_{phase}"].mean()
    return pd.DataFrame(agg)


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


def _warnings_column(stats: pd.DataFrame) -> pd.Series:
    cv = stats["cv"].to_numpy(dtype=float)
    rcv = stats["repeat_cv"].to_numpy(dtype=float)
    nout = stats["n_outliers"].fillna(0).to_numpy(dtype=int)
    few = (stats["n_samples"].fillna(0) < MIN_SAMPLES) | (stats["n_repeats_measured"].fillna(0) < MIN_REPEATS)
    texts = []
    for c, r, o, f in zip(cv, rcv, nout, few.to_numpy(), strict=True):
        parts = []
        if c >= CV_WARN:
            parts.append(f"CV {c:.0%}")
        if r >= CV_WARN:
            parts.append(f"repeats vary {r:.0%}")
        if o:
            parts.append(f"{o} outlier(s)")
        if f:
            parts.append("too few samples")
        texts.append("; ".join(parts))
    return pd.Series(texts, index=stats.index, dtype=str)


def cell_table(rec: pd.DataFrame, seed: int = 0) -> CellTable:
    """Aggregate records over repeats: one row per cell with speed, noise, phases, memory, quality."""
    cell_codes, uniques = pd.factorize(rec["cell_id"].astype(str), sort=True)
    cell_ids = pd.Index(uniques)
    samples, codes = _samples(rec, cell_codes, cell_ids)
    stats = _cell_identity(rec)
    stats = stats.join(_record_aggregates(rec)).join(_sample_stats(samples, codes, cell_ids))
    stats["n_ok"] = stats["n_ok"].fillna(0).astype(int)
    measured = stats["n_samples"].notna() & (stats["n_samples"] > 0)
    stats["measured"] = measured
    ids = list(stats.index[measured])
    counts = np.bincount(codes, minlength=len(cell_ids))
    counts = counts[counts > 0]  # the measured cells, in cell_id order like ids
    bounds = np.cumsum(np.r_[0, counts]).astype(int)
    values = samples["step_s"].to_numpy(dtype=float)  # sorted by cell_id, like ids
    arrays = [values[bounds[i] : bounds[i + 1]] for i in range(len(ids))]
    boot = bootstrap_medians(arrays, seed)
    lo, hi = percentile_ci(boot)
    stats["ci_lo_s"] = pd.Series(lo, index=ids, dtype=float)
    stats["ci_hi_s"] = pd.Series(hi, index=ids, dtype=float)
    bs = stats["batch_size"]
    stats["throughput_median"] = bs / stats["median_s"]
    stats["throughput_ci_lo"] = bs / stats["ci_hi_s"]
    stats["throughput_ci_hi"] = bs / stats["ci_lo_s"]
    thr = pd.Series(bs.reindex(cell_ids).to_numpy()[codes] / values)
    tg = thr.groupby(codes, sort=True)
    thr_index = pd.Index(cell_ids.take(tg.size().index.to_numpy()), name="cell_id")
    stats["throughput_mean"] = pd.Series(tg.mean().to_numpy(), index=thr_index)
    stats["throughput_cv"] = pd.Series(tg.std(ddof=1).to_numpy(), index=thr_index) / stats["throughput_mean"]
    _add_flops(stats)
    stats["warnings"] = _warnings_column(stats).where(stats["measured"], "")
    stats["label"] = runtime_labels(stats)
    stats["params_short"] = short_params(rec, stats)
    return CellTable(
        stats=stats, samples=dict(zip(ids, arrays, strict=True)), boot=dict(zip(ids, boot, strict=True))
    )


def _add_flops(stats: pd.DataFrame) -> None:
    stats["achieved_flops"] = stats["flops_per_sample_train"] * stats["throughput_median"]
    best = stats.groupby("device")["achieved_flops"].transform("max")
    step_flops = stats["flops_per_sample_train"] * stats["batch_size"]
    overhead = stats["median_s"] - step_flops / best
    # the most efficient cell is 0 by definition; rounding noise (1e-18 s) is not an overhead
    stats["overhead_s"] = overhead.where(overhead.isna() | (overhead > stats["median_s"] * 1e-9), 0.0)
    stats["overhead_frac"] = stats["overhead_s"] / stats["median_s"]


def short_params(rec: pd.DataFrame, stats: pd.DataFrame) -> pd.Series:
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


# ------------------------------------------------------------------------------------------ comparisons


@dataclass(frozen=True)
class BaselineChoice:
    requested: str | None
    used: str | None
    note: str | None


def choose_baseline(manifest: Doc, stats: pd.DataFrame) -> BaselineChoice:
    """The manifest's baseline image (default: the TF1 entry); falls back to the first image with ok cells."""
    images = _image_order(manifest, stats)
    requested = manifest.get("baseline")
    if not isinstance(requested, str) or not requested:
        tf1 = [i for i in images if _declared_tf(manifest, stats, i).startswith("1.")]
        requested = tf1[0] if tf1 else (images[0] if images else None)
    measured = set(stats.loc[stats["measured"], "image"]) if len(stats) else set()
    if requested in measured:
        return BaselineChoice(requested, requested, None)
    fallback = next((i for i in images if i in measured), None)
    if fallback is None:
        return BaselineChoice(requested, None, f"baseline {requested} has no ok cells and no image has any")
    why = "is not in this run" if requested not in images else "has no ok cells (all unavailable/failed)"
    note = f"baseline {requested} {why}; comparing against {fallback} instead (first image with ok cells)"
    return BaselineChoice(requested, fallback, note)


def _image_order(manifest: Doc, stats: pd.DataFrame) -> list[str]:
    order: list[str] = []
    for cell in manifest.get("cells") or []:
        img = cell.get("image") if isinstance(cell, dict) else None
        if isinstance(img, str) and img not in order:
            order.append(img)
    for img in stats["image"] if len(stats) else []:
        if img not in order:
            order.append(str(img))
    return order


def _declared_tf(manifest: Doc, stats: pd.DataFrame, image: str) -> str:
    rows: list[Any] = list(stats.loc[stats["image"] == image, "declared_tf"]) if len(stats) else []
    for value in rows:
        if value:
            return str(value)
    return ""


def image_order(manifest: Doc, stats: pd.DataFrame) -> list[str]:
    return _image_order(manifest, stats)


def compare_pairs(a: CellTable, b: CellTable, pairs: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Ratio of medians with CI and Mann-Whitney p for pairs (columns a_cell, b_cell) of measured cells."""
    pairs = pairs[pairs["a_cell"].isin(a.samples.keys()) & pairs["b_cell"].isin(b.samples.keys())]
    pairs = pairs.reset_index(drop=True)
    n = len(pairs)
    ratio = np.full(n, np.nan)
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    pval = np.full(n, np.nan)
    if n:
        # Cells of equal sample size share resample indices; pairing resample j of B with resample
        # j + offset of A (random offset != 0 per pair, wrapping around) makes the two bootstraps independent.
        rng = np.random.default_rng(seed + 1)
        n_boot = next(iter(a.boot.values())).shape[0]
        offset = rng.integers(1, n_boot, size=(len(pairs), 1))
        rboot: FloatArray = np.empty((n, n_boot))
        cut = n_boot - offset[:, 0]
        for i, (ca, cb) in enumerate(zip(pairs["a_cell"], pairs["b_cell"], strict=True)):
            xa, xb, k = a.boot[ca], b.boot[cb], cut[i]  # row by row: no stacked copies of the bootstraps
            np.divide(xb[:k], xa[n_boot - k :], out=rboot[i, :k])
            np.divide(xb[k:], xa[: n_boot - k], out=rboot[i, k:])
        lo, hi = percentile_ci(rboot)
        ratio = (
            b.stats.loc[pairs["b_cell"], "median_s"].to_numpy()
            / a.stats.loc[pairs["a_cell"], "median_s"].to_numpy()
        )
        pval = _mannwhitney(pairs, a, b)
    out = pairs.copy()
    out["ratio"] = ratio
    out["ratio_lo"] = lo
    out["ratio_hi"] = hi
    out["p"] = pval
    out["significant"] = (out["p"] < ALPHA) & ((out["ratio_lo"] > 1) | (out["ratio_hi"] < 1))
    return out


def _mannwhitney(pairs: pd.DataFrame, a: CellTable, b: CellTable) -> FloatArray:
    pval: FloatArray = np.full(len(pairs), np.nan)
    a_cells = [str(c) for c in pairs["a_cell"]]
    b_cells = [str(c) for c in pairs["b_cell"]]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (ca, cb) in enumerate(zip(a_cells, b_cells, strict=True)):
        groups.setdefault((len(a.samples[ca]), len(b.samples[cb])), []).append(i)
    for rows in groups.values():
        xa = np.stack([a.samples[a_cells[i]] for i in rows])
        xb = np.stack([b.samples[b_cells[i]] for i in rows])
        with np.errstate(all="ignore"):
            res = sps.mannwhitneyu(xb, xa, alternative="two-sided", axis=1)
        pval[rows] = np.asarray(res.pvalue, dtype=float)
    return pval


def fmt_p(p: float) -> str:
    if math.isnan(p):
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def verdict(name_b: str, name_a: str, ratio: float, lo: float, hi: float, p: float, significant: bool) -> str:
    """Plain wording with the direction, e.g. 'X is 2.90x [2.70, 3.10] slower than Y (step time, p=0.002)'."""
    if math.isnan(ratio):
        return f"{name_b} vs {name_a}: not comparable"
    if not significant:
        return (
            f"no significant difference between {name_b} and {name_a} "
            f"(step time ratio {ratio:.2f}{TIMES} [{lo:.2f}, {hi:.2f}], {fmt_p(p)})"
        )
    if ratio >= 1:
        how, r, rlo, rhi = "slower", ratio, lo, hi
    else:
        how, r, rlo, rhi = "faster", 1 / ratio, 1 / hi, 1 / lo
    return f"{name_b} is {r:.2f}{TIMES} [{rlo:.2f}, {rhi:.2f}] {how} than {name_a} (step time, {fmt_p(p)})"


def direction(ratio: float, significant: bool) -> str:
    if not significant or math.isnan(ratio):
        return "same"
    return "slower" if ratio > 1 else "faster"


def compare_to_baseline(cells: CellTable, baseline: str | None, seed: int = 0) -> pd.DataFrame:
    """Each measured non-baseline cell, paired with the baseline cell of equal (device, workload, params)."""
    st = cells.stats[cells.stats["measured"]]
    cols = ["device", "workload", "params_key"]
    base = st[st["image"] == baseline].reset_index()[[*cols, "cell_id"]].rename(columns={"cell_id": "a_cell"})
    other = st[st["image"] != baseline].reset_index()[[*cols, "cell_id", "image"]]
    pairs = other.rename(columns={"cell_id": "b_cell"}).merge(base, on=cols, how="inner")
    out = compare_pairs(cells, cells, pairs, seed)
    return _annotate(out, cells, cells)


def _annotate(out: pd.DataFrame, a: CellTable, b: CellTable) -> pd.DataFrame:
    sa = a.stats.loc[out["a_cell"]].reset_index(drop=True)
    sb = b.stats.loc[out["b_cell"]].reset_index(drop=True)
    out["a_image"] = sa["image"].to_numpy()
    out["b_image"] = sb["image"].to_numpy()
    out["workload"] = sb["workload"].to_numpy()
    out["params_label"] = sb["params_label"].to_numpy()
    out["params_short"] = sb["params_short"].to_numpy()
    out["a_median_s"] = sa["median_s"].to_numpy()
    out["b_median_s"] = sb["median_s"].to_numpy()
    out["warnings"] = [
        "; ".join(x for x in (f"A: {wa}" if wa else "", f"B: {wb}" if wb else "") if x)
        for wa, wb in zip(sa["warnings"], sb["warnings"], strict=True)
    ]
    out["verdict"] = [
        verdict(nb, na, r, lo, hi, p, bool(s))
        for nb, na, r, lo, hi, p, s in zip(
            out["b_image"],
            out["a_image"],
            out["ratio"],
            out["ratio_lo"],
            out["ratio_hi"],
            out["p"],
            out["significant"],
            strict=True,
        )
    ]
    out["direction"] = [direction(r, bool(s)) for r, s in zip(out["ratio"], out["significant"], strict=True)]
    d_acc = sb["final_accuracy"].to_numpy() - sa["final_accuracy"].to_numpy()
    d_loss = sb["final_loss"].to_numpy() - sa["final_loss"].to_numpy()
    out["a_final_accuracy"] = sa["final_accuracy"].to_numpy()
    out["b_final_accuracy"] = sb["final_accuracy"].to_numpy()
    out["d_accuracy"] = d_acc
    out["d_loss"] = d_loss
    with np.errstate(all="ignore"):
        loss_bad = np.abs(d_loss) > LOSS_REL_TOLERANCE * np.abs(sa["final_loss"].to_numpy())
    out["quality_suspect"] = (np.abs(d_acc) > ACC_TOLERANCE) | loss_bad
    out["a_api_style"] = sa["api_style"].to_numpy()
    out["b_api_style"] = sb["api_style"].to_numpy()
    return out


def geometric_mean_ratios(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Per compared image: geometric mean of step-time ratios over all paired cells (one overall number)."""
    if comparisons.empty:
        return pd.DataFrame(columns=["b_image", "a_image", "geomean", "n"])
    logr = np.log(comparisons["ratio"])
    g = logr.groupby([comparisons["b_image"], comparisons["a_image"]], sort=False)
    out = pd.DataFrame({"geomean": np.exp(g.mean()), "n": g.size()}).reset_index()
    return out


# ------------------------------------------------------------------------------------------ problems


def problem_cells(rec: pd.DataFrame) -> pd.DataFrame:
    """Non-ok records grouped per (cell, status, reason): repeats affected and the last log tail."""
    bad = rec[rec["status"] != "ok"].copy()
    bad["params_label"] = [params_label(p) for p in bad["params"]]
    if bad.empty:
        return pd.DataFrame(
            columns=["cell_id", "image", "status", "reason", "repeats", "log_tail", "exit_code"]
        )
    bad["reason"] = bad["reason"].fillna("(no reason recorded)").astype(str)
    g = bad.sort_values(["cell_id", "repeat"]).groupby(["cell_id", "status", "reason"], sort=True)
    out = g.agg(
        image=("image", "first"),
        params_label=("params_label", "first"),
        declared_tf=("declared_tf", "first"),
        repeats=("repeat", lambda s: ", ".join(str(int(x)) for x in s)),
        log_tail=("log_tail", "last"),
        exit_code=("exit_code", "last"),
    ).reset_index()
    return out


# ------------------------------------------------------------------------------------------ run / history


@dataclass
class RunAnalysis:
    run: RunData
    records: pd.DataFrame
    cells: CellTable
    baseline: BaselineChoice
    comparisons: pd.DataFrame
    geomeans: pd.DataFrame
    problems: pd.DataFrame
    images: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.run.run_id


def analyse_run(run: RunData, seed: int = 0) -> RunAnalysis:
    rec = records_frame(run.records)
    cells = cell_table(rec, seed)
    baseline = choose_baseline(run.manifest, cells.stats)
    comparisons = compare_to_baseline(cells, baseline.used, seed)
    return RunAnalysis(
        run=run,
        records=rec,
        cells=cells,
        baseline=baseline,
        comparisons=comparisons,
        geomeans=geometric_mean_ratios(comparisons),
        problems=problem_cells(rec),
        images=image_order(run.manifest, cells.stats),
    )


def history_trends(current: RunAnalysis, history: Sequence[RunAnalysis]) -> pd.DataFrame:
    """Median step time (with CI) per cell of the current run over all runs holding it, oldest first."""
    runs = [h for h in history if h.run_id != current.run_id] + [current]
    frames = []
    for ana in runs:
        st = ana.cells.stats[ana.cells.stats["measured"]]
        frames.append(
            pd.DataFrame(
                {
                    "run_id": ana.run_id,
                    "cell_id": st.index,
                    "median_s": st["median_s"].to_numpy(),
                    "ci_lo_s": st["ci_lo_s"].to_numpy(),
                    "ci_hi_s": st["ci_hi_s"].to_numpy(),
                }
            )
        )
    trends = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if trends.empty:
        return trends
    keep = set(current.cells.stats.index[current.cells.stats["measured"]])
    trends = trends[trends["cell_id"].isin(keep)]
    return trends.sort_values(["cell_id", "run_id"], kind="stable").reset_index(drop=True)


def history_regressions(
    trends: pd.DataFrame, current_run_id: str, threshold_pct: float = HISTORY_THRESHOLD_PCT
) -> pd.DataFrame:
    """Current vs the previous run of each cell: regression if > threshold slower and CIs disjoint."""
    cols = ["cell_id", "prev_run_id", "prev_median_s", "median_s", "change_pct", "status"]
    if trends.empty:
        return pd.DataFrame(columns=cols)
    prev = trends.groupby("cell_id", sort=False).shift(1)
    cur = trends[(trends["run_id"] == current_run_id) & prev["run_id"].notna()]
    p = prev.loc[cur.index]
    change = (cur["median_s"] / p["median_s"] - 1) * 100
    slower = (change > threshold_pct) & (cur["ci_lo_s"] > p["ci_hi_s"])
    faster = (change < -threshold_pct) & (cur["ci_hi_s"] < p["ci_lo_s"])
    status = np.where(slower, "regression", np.where(faster, "improvement", "unchanged"))
    return pd.DataFrame(
        {
            "cell_id": cur["cell_id"].to_numpy(),
            "prev_run_id": p["run_id"].to_numpy(),
            "prev_median_s": p["median_s"].to_numpy(),
            "median_s": cur["median_s"].to_numpy(),
            "change_pct": change.to_numpy(),
            "status": status,
        }
    )


def compare_run_cells(a: RunAnalysis, b: RunAnalysis, seed: int = 0) -> pd.DataFrame:
    """Cells present (measured) in both runs, matched by cell_id: B vs A."""
    common = sorted(set(a.cells.samples) & set(b.cells.samples))
    pairs = pd.DataFrame({"a_cell": common, "b_cell": common})
    out = compare_pairs(a.cells, b.cells, pairs, seed)
    return _annotate(out, a.cells, b.cells)


def regressed(comparisons: pd.DataFrame, threshold_pct: float) -> pd.Series:
    """B slower than A by more than threshold_pct, and significantly so (p < ALPHA, ratio CI above 1)."""
    if comparisons.empty:
        return pd.Series(dtype=bool)
    return (
        (comparisons["ratio"] > 1 + threshold_pct / 100)
        & comparisons["significant"]
        & (comparisons["ratio_lo"] > 1)
    )
