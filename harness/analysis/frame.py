"""Cell records flattened into pandas frames: one row per record, one row per steady-state window."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

Doc = dict[str, Any]

PHASES = (
    "interpreter",
    "import",
    "data",
    "build",
    "first_step",
    "fit_total",
    "fit_tail",
    "train_total",
    "eval",
    "symbolic_build",
)
#: telemetry figures copied into the record frame (record["telemetry"][key] -> column "tel_<key>")
TELEMETRY = (
    "cpu_time_s",
    "cpu_cores_mean",
    "others_cores_mean",
    "others_cores_max",
    "steal_pct",
    "throttled_s",
    "container_peak_bytes",
)
_NUMERIC = (
    *(f"phase_{p}" for p in PHASES),
    *(f"tel_{k}" for k in TELEMETRY),
    "host_peak_rss_bytes",
    "gpu_peak_bytes",
    "final_loss",
    "final_accuracy",
    "flops_per_sample_train",
    "total_steps",
    "cpu_per_step_s",
)


def params_key(params: Any) -> str:
    """Canonical text of a cell's params: the pairing key across images."""
    return json.dumps(params if isinstance(params, dict) else {}, sort_keys=True, default=str)


def params_label(params: Any) -> str:
    if not isinstance(params, dict):
        return ""
    return ", ".join(f"{k}={params[k]}" for k in sorted(params))


def num(value: Any) -> float:
    kind = type(value)
    if kind is float or kind is int:
        return float(value)
    return float(value) if isinstance(value, int | float) and kind is not bool else math.nan


def sub(doc: Any, key: str) -> Doc:
    value = doc.get(key) if isinstance(doc, dict) else None
    return value if isinstance(value, dict) else {}


def _median(values: Any) -> float:
    if not isinstance(values, list):
        return math.nan
    xs = [num(v) for v in values]
    xs = [x for x in xs if math.isfinite(x)]
    return float(np.median(xs)) if xs else math.nan


def _payload_columns(row: Doc, payload: Doc) -> None:
    steps = sub(payload, "steps")
    samples = steps.get("step_time_s")
    row["samples"] = samples if isinstance(samples, list) else []
    row["total_steps"] = num(steps.get("total_steps"))
    row["cpu_per_step_s"] = _median(steps.get("cpu_time_s"))
    spec_bs = num(sub(payload, "spec").get("batch_size"))
    if not math.isnan(spec_bs):
        row["batch_size"] = spec_bs
    row["tf_version"] = sub(payload, "runtime").get("tf_version")
    row["api_style"] = payload.get("api_style")
    phases = sub(payload, "phases_s")
    for phase in PHASES:
        row[f"phase_{phase}"] = num(phases.get(phase))
    memory = sub(payload, "memory")
    row["host_peak_rss_bytes"] = num(memory.get("host_peak_rss_bytes"))
    row["gpu_peak_bytes"] = num(memory.get("gpu_peak_bytes"))
    row["gpu_peak_note"] = memory.get("gpu_peak_note")
    quality = sub(payload, "quality")
    row["final_loss"] = num(quality.get("final_loss"))
    row["final_accuracy"] = num(quality.get("final_accuracy"))
    row["flops_per_sample_train"] = num(sub(payload, "model").get("flops_per_sample_train"))


def record_row(rec: Doc) -> Doc:
    cell = sub(rec, "cell")
    runner = sub(rec, "runner")
    params = cell.get("params")
    contention = sub(rec, "contention")
    telemetry = sub(rec, "telemetry")
    row: Doc = {
        "run_id": str(rec.get("run_id", "")),
        "cell_id": str(rec.get("cell_id", "")),
        "repeat": int(rec.get("repeat") or 0),
        "attempt": int(rec.get("attempt") or 0),
        "status": str(rec.get("status", "")),
        "reason": rec.get("reason"),
        "exit_code": rec.get("exit_code"),
        "log_tail": str(rec.get("log_tail") or ""),
        "image": str(cell.get("image", "")),
        "device": str(cell.get("device", "")),
        "workload": str(cell.get("workload", "")),
        "params": params if isinstance(params, dict) else {},
        "declared_tf": str(sub(cell, "declared").get("tf") or ""),
        "image_tag": runner.get("image_tag"),
        "image_id": runner.get("image_id"),
        "runner_kind": str(runner.get("kind") or ""),
        "wall_s": num(rec.get("wall_s")),
        "contended": bool(contention.get("contended", False)),
        "contention_reasons": "; ".join(str(x) for x in contention.get("reasons") or []),
        "rerun": bool(rec.get("rerun", False)),
        "has_telemetry": bool(telemetry),
        "samples": [],
        "batch_size": num(params.get("batch_size")) if isinstance(params, dict) else math.nan,
    }
    for key in TELEMETRY:
        row[f"tel_{key}"] = num(telemetry.get(key))
    payload = rec.get("payload")
    if isinstance(payload, dict):
        _payload_columns(row, payload)
    return row


def records_frame(records: Iterable[Doc]) -> pd.DataFrame:
    """One row per record (cell x repeat x attempt) with the fields the analysis needs, flattened."""
    df = pd.DataFrame.from_records([record_row(r) for r in records])
    if df.empty:
        df = pd.DataFrame.from_records([record_row({})]).iloc[0:0]
    for col in ("tf_version", "api_style", "gpu_peak_note"):
        if col not in df:
            df[col] = None
    for col in _NUMERIC:
        if col not in df:
            df[col] = math.nan
    return df


def used_mask(rec: pd.DataFrame, include_contended: bool = False) -> Any:
    """Records whose windows enter the statistics: ok, and (by default) not contended."""
    ok = (rec["status"] == "ok").to_numpy(dtype=bool)
    if include_contended:
        return ok
    return ok & ~rec["contended"].to_numpy(dtype=bool)


def samples_frame(rec: pd.DataFrame, include_contended: bool = False) -> pd.DataFrame:
    """One row per steady-state window of a used record: cell_id, execution (the record's row number),
    repeat, step_s; sorted by cell_id then execution, windows in their recorded order."""
    used = used_mask(rec, include_contended)
    lists = [v if isinstance(v, list) else [v] for v in rec["samples"].to_numpy()[used]]
    lengths = np.fromiter((len(v) for v in lists), dtype=np.intp, count=len(lists))
    flat = pd.Series([x for v in lists for x in v], dtype=object)
    step = pd.to_numeric(flat, errors="coerce").to_numpy(dtype=float)
    execution = np.repeat(np.flatnonzero(used), lengths)
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(step) & (step > 0)
    out = pd.DataFrame(
        {
            "cell_id": rec["cell_id"].astype(str).to_numpy()[execution[keep]],
            "execution": execution[keep],
            "repeat": rec["repeat"].to_numpy()[execution[keep]].astype(int),
            "step_s": step[keep],
        }
    )
    return out.sort_values(["cell_id", "execution"], kind="stable").reset_index(drop=True)
