"""What the public-record assessment needs from an analysed run: each cell's identity, the TF and Keras that
actually ran (the payload's runtime provenance), and its used executions' values of every metric a claim
names (step time: the cell table's execution medians and hierarchical bootstrap; a phase or the peak RSS:
one value per used execution, bootstrapped here). Contended executions are left out as everywhere else."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from harness.analysis.document import ClaimRow
from harness.analysis.estimators import FloatArray, bootstrap_means
from harness.analysis.frame import used_mask
from harness.analysis.publicclaims import Claim, packaged_claims
from harness.analysis.publicrecord import CellFacts, assess_all

Doc = dict[str, Any]


def _runtime(record: Doc) -> Doc:
    payload = record.get("payload")
    runtime = payload.get("runtime") if isinstance(payload, dict) else None
    return runtime if isinstance(runtime, dict) else {}


def keras_major_of(runtime: Doc) -> int | None:
    """The Keras major that ran (the payload's keras_major; older records: from keras_version)."""
    major = runtime.get("keras_major")
    if isinstance(major, int) and not isinstance(major, bool):
        return major
    head = str(runtime.get("keras_version") or "").split(".", 1)[0]
    return int(head) if head.isdigit() else None


def _minor(version: Any) -> str:
    return ".".join(str(version).split(".")[:2]) if version else ""


def metric_value(record: Doc, metric: str) -> float:
    """One execution's value of a non-step metric (NaN when the record has none)."""
    payload = record.get("payload")
    payload = payload if isinstance(payload, dict) else {}
    value: Any
    if metric == "peak_rss":
        value = _sub(payload, "memory").get("host_peak_rss_bytes")
    elif metric.startswith("phase:"):
        value = _sub(payload, "phases_s").get(metric.split(":", 1)[1])
    else:
        return math.nan
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value > 0
    return float(value) if ok else math.nan


def _sub(doc: Doc, key: str) -> Doc:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def needed_metrics(claims: Iterable[Claim]) -> list[str]:
    return sorted({c.compare.metric for c in claims})


def assess_run(ana: Any, claims: Sequence[Claim] | None = None) -> list[ClaimRow]:
    """Every claim of the public record (default: the packaged file) against a `RunAnalysis`."""
    chosen = list(packaged_claims() if claims is None else claims)
    return assess_all(chosen, cell_facts(ana, needed_metrics(chosen)), float(ana.margin_pct))


def cell_facts(ana: Any, metrics: Sequence[str], seed: int = 0) -> list[CellFacts]:
    """`CellFacts` of every cell of a `RunAnalysis` (typed Any: the class lives in the package's __init__)."""
    rec = ana.records
    records: list[Doc] = list(ana.run.records)
    if len(rec) != len(records):  # the frame is built from the records in order; anything else is a bug
        raise ValueError("record frame and records differ in length")
    used = used_mask(rec, ana.include_contended) if len(rec) else np.zeros(0, dtype=bool)
    runtimes: dict[str, Doc] = {}
    per_metric: dict[str, dict[str, list[float]]] = {m: {} for m in metrics if m != "step"}
    for i, record in enumerate(records):
        cell = str(record.get("cell_id", ""))
        if record.get("status") == "ok" and cell not in runtimes and _runtime(record):
            runtimes[cell] = _runtime(record)
        if not used[i]:
            continue
        for metric, by_cell in per_metric.items():
            value = metric_value(record, metric)
            if math.isfinite(value):
                by_cell.setdefault(cell, []).append(value)
    facts = []
    stats = ana.cells.stats
    for n, (cell, row) in enumerate(stats.iterrows()):
        runtime = runtimes.get(str(cell), {})
        values: dict[str, FloatArray] = {}
        boot: dict[str, FloatArray] = {}
        if cell in ana.cells.executions:
            values["step"], boot["step"] = ana.cells.executions[cell], ana.cells.boot[cell]
        for k, (metric, by_cell) in enumerate(sorted(per_metric.items())):
            if by_cell.get(str(cell)):
                values[metric] = np.asarray(by_cell[str(cell)], dtype=float)
                boot[metric] = bootstrap_means(values[metric], seed + 1000 * n + k)
        facts.append(
            CellFacts(
                cell_id=str(cell),
                image=str(row["image"]),
                device=str(row["device"]),
                workload=str(row["workload"]),
                params=_params(row["params_key"]),
                tf_minor=_minor(runtime.get("tf_version") or row["declared_tf"]),
                keras=keras_major_of(runtime),
                values=values,
                boot=boot,
            )
        )
    return facts


def _params(key: Any) -> Doc:
    try:
        value = json.loads(str(key))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
