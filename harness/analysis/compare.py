"""Compare two runs cell by cell (matched by cell_id): a rich table or a JSON document, and a regression
gate that only a CI can trip. Both runs' analyses are read from their run folders (`harness.analysis.stored`);
only the ratios across the two runs are computed here, from the stored per-execution series."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness import analysis
from harness.analysis import stored
from harness.errors import ConfigError, ResultError
from harness.matrix.params import WORKLOADS, merge
from harness.results.store import RunData, load_run, resolve_run

COMPARE_KIND = "tfmh.compare"
COMPARE_VERSION = 1


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms" if math.isfinite(seconds) else "-"


def _finite(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(float(x)) else None


def comparison_doc(
    a: analysis.AnalysisTables,
    b: analysis.AnalysisTables,
    comp: Any,
    threshold: float | None,
    margin: float,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The machine-readable comparison (`harness compare --format json`). `params`: `param_changes` of the
    two runs; a cell that ran with other parameters is shown, marked, and never decides the gate."""
    host = analysis.host_change(a.drift, b.drift)
    measured_ci = comp[["ratio_lo", "ratio_hi"]]
    if host.confounded:  # verdicts and the gate use the CI widened by the host's own change
        widened = [
            analysis.widen(lo, hi, host) for lo, hi in zip(comp["ratio_lo"], comp["ratio_hi"], strict=True)
        ]
        comp = comp.assign(ratio_lo=[w[0] for w in widened], ratio_hi=[w[1] for w in widened])
        comp = analysis.reclassify(comp, margin, name_a="A", name_b="B")
    bad = analysis.regressed(comp, threshold) if threshold is not None else None
    cells = []
    for i, row in enumerate(comp.to_dict("records")):
        cells.append(
            {
                "cell_id": str(row["b_cell"]),
                "a_step_s": _finite(row["a_step_s"]),
                "b_step_s": _finite(row["b_step_s"]),
                "ratio": _finite(row["ratio"]),
                "ci": [_finite(row["ratio_lo"]), _finite(row["ratio_hi"])],
                "measured_ci": (
                    [_finite(measured_ci["ratio_lo"].iloc[i]), _finite(measured_ci["ratio_hi"].iloc[i])]
                    if host.confounded
                    else None
                ),
                "half_width_pct": _finite(row["half_width_pct"]),
                "p": _finite(row["p"]),
                "executions": {"a": int(row["a_n_exec"]), "b": int(row["b_n_exec"])},
                "contended_excluded": {"a": int(row["a_contended"]), "b": int(row["b_contended"])},
                "verdict": str(row["kind"]),
                "text": str(row["verdict"]),
                "regression": (
                    bool(bad.iloc[i]) if bad is not None and row["b_cell"] not in params["changed"] else None
                ),
                "params_changed": row["b_cell"] in params["changed"],
            }
        )
    only_a = sorted(set(a.cells.executions) - set(b.cells.executions))
    only_b = sorted(set(b.cells.executions) - set(a.cells.executions))
    regressions: list[str] = [str(c["cell_id"]) for c in cells if c["regression"]]
    return {
        "kind": COMPARE_KIND,
        "schema_version": COMPARE_VERSION,
        "a": a.run_id,
        "b": b.run_id,
        "margin_pct": margin,
        "confidence": analysis.CONFIDENCE,
        "unit": "execution",
        "include_contended": a.include_contended,
        "fail_on_regression_pct": threshold,
        "cells": cells,
        "only_in_a": only_a,
        "only_in_b": only_b,
        "counts": {k: sum(1 for c in cells if c["verdict"] == k) for k in analysis.KINDS},
        "regressions": regressions,
        "host": {
            "matmul_change_pct": host.matmul_pct,
            "loop_change_pct": host.loop_pct,
            "within_run_swing_pct": host.within_pct,
            "ci_widened_pct": host.widen_pct,
            "confounded": host.confounded,
            "note": host.note,
        },
        "payload": _payload_change(a, b),
        "params": params,
        "gate": None if threshold is None else ("fail" if regressions else "pass"),
    }


def param_changes(manifest_a: dict[str, Any], manifest_b: dict[str, Any]) -> dict[str, Any]:
    """Cells of both runs whose parameters differ (a matrix edit, ``--param``): same id, other work. Per
    cell: {key: [A's value, B's value]}; with a note naming the keys."""

    def by_id(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Each cell's parameters, contract defaults filled in (an older run ran a newer one's default)."""
        return {
            str(c.get("cell_id")): merge(str(c.get("workload")), c.get("params") or {})
            for c in manifest.get("cells") or []
            if c.get("workload") in WORKLOADS
        }

    cells_a, cells_b = by_id(manifest_a), by_id(manifest_b)
    changed: dict[str, dict[str, list[Any]]] = {}
    for cell_id in sorted(set(cells_a) & set(cells_b)):
        pa, pb = cells_a[cell_id], cells_b[cell_id]
        diff = {k: [pa.get(k), pb.get(k)] for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)}
        if diff:
            changed[cell_id] = diff
    keys = sorted({k for diff in changed.values() for k in diff})
    note = (
        f"{len(changed)} cell(s) ran with other parameters in A and B ({', '.join(keys)}): their ratios "
        "compare different work"
        if changed
        else None
    )
    return {"changed": changed, "note": note}


def _payload_change(a: analysis.AnalysisTables, b: analysis.AnalysisTables) -> dict[str, Any]:
    changed = analysis.payload_changed(a.payload_sha256, b.payload_sha256)
    note = (
        f"the payload changed between the runs (sha256 {str(a.payload_sha256)[:12]} in A, "
        f"{str(b.payload_sha256)[:12]} in B): part of any difference may be how the harness measures, "
        "not TensorFlow"
        if changed
        else None
    )
    return {"a": a.payload_sha256, "b": b.payload_sha256, "changed": changed, "note": note}


@dataclass(frozen=True)
class CompareRequest:
    """`harness compare`: two runs of a results folder (ids or paths), the gate and how to print."""

    results_dir: Path
    run_a: str
    run_b: str
    fail_on_regression_pct: float | None = None
    margin_pct: float | None = None
    as_json: bool = False
    include_contended: bool = False

    def check(self) -> None:
        """Every value checked before a run folder is read (or its stale analysis rewritten)."""
        threshold, margin = self.fail_on_regression_pct, self.margin_pct
        if threshold is not None and not (math.isfinite(threshold) and 0 <= threshold <= 1000):
            raise ConfigError(f"--fail-on-regression: expected a percentage 0..1000, got {threshold}")
        if margin is not None and not (math.isfinite(margin) and 0 < margin <= 50):
            raise ConfigError(f"--margin: expected 0 < PCT <= 50, got {margin}")


def compare_folders(request: CompareRequest, console: Console) -> int:
    """`harness compare`: the request checked, both runs read (a stale stored analysis recomputed), then
    `compare_runs`."""
    request.check()
    run_a = load_run(resolve_run(request.results_dir, request.run_a))
    run_b = load_run(resolve_run(request.results_dir, request.run_b))
    stored.refresh_all([run_a, run_b])
    return compare_runs(
        run_a,
        run_b,
        request.fail_on_regression_pct,
        console,
        margin_pct=request.margin_pct,
        as_json=request.as_json,
        include_contended=request.include_contended,
    )


def compare_runs(
    run_a: RunData,
    run_b: RunData,
    fail_on_regression_pct: float | None,
    console: Console,
    margin_pct: float | None = None,
    as_json: bool = False,
    include_contended: bool = False,
) -> int:
    """Print B vs A for every cell measured in both runs; return 1 if a cell regressed, else 0.

    A cell regressed when the lower bound of its step-time ratio CI (B/A) lies more than
    `fail_on_regression_pct` percent above 1: the point estimate alone never fails a build. A gate with
    no cell measured in both runs cannot decide: that is an error (exit 2), not a pass.
    """
    a = analysis.tables_of(stored.load(run_a, include_contended=include_contended))
    b = analysis.tables_of(stored.load(run_b, include_contended=include_contended))
    margin = margin_pct if margin_pct is not None else a.margin_pct
    comp = analysis.compare_cells_across(a.cells, b.cells, margin)
    threshold = fail_on_regression_pct
    doc = comparison_doc(a, b, comp, threshold, margin, param_changes(run_a.manifest, run_b.manifest))
    if as_json:
        console.file.write(json.dumps(doc, indent=1) + "\n")
    else:
        _print_table(doc, a, b, console)
    if threshold is not None and not any(not c["params_changed"] for c in doc["cells"]):
        raise ResultError(
            f"--fail-on-regression: no cell was measured with the same parameters in both {run_a.run_id} "
            f"and {run_b.run_id}; the gate cannot decide"
        )
    return 1 if doc["gate"] == "fail" else 0


_STYLE = {"slower": "red", "faster": "green", "inconclusive": "yellow"}


def _print_table(
    doc: dict[str, Any], a: analysis.AnalysisTables, b: analysis.AnalysisTables, console: Console
) -> None:
    title = f"B {b.run_id} vs A {a.run_id}: step time, {analysis.CONFIDENCE:.0%} CI over executions"
    table = Table(title=Text(title))
    for name, justify in (
        ("cell", "left"),
        ("A", "right"),
        ("B", "right"),
        ("ratio B/A [95% CI]", "right"),
        ("execs A/B", "right"),
        ("verdict", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in doc["cells"]:
        style = "bold red" if c["regression"] else _STYLE.get(c["verdict"], "")
        lo, hi = c["ci"]
        ratio = "-" if c["ratio"] is None else f"{c['ratio']:.3f}{analysis.TIMES}"
        ci = "" if lo is None or hi is None else f" [{lo:.3f}, {hi:.3f}]"
        execs = f"{c['executions']['a']}/{c['executions']['b']}"
        excluded = c["contended_excluded"]
        if excluded["a"] or excluded["b"]:
            execs += f" ({excluded['a']}+{excluded['b']} contended excluded)"
        text = ("REGRESSION: " if c["regression"] else "") + c["text"]
        if c["params_changed"]:
            text += " (other parameters in A and B: not in the gate)"
        table.add_row(
            Text(c["cell_id"]),
            _ms(c["a_step_s"] if c["a_step_s"] is not None else math.nan),
            _ms(c["b_step_s"] if c["b_step_s"] is not None else math.nan),
            ratio + ci,
            execs,
            Text(text),
            style=style,
        )
    console.print(table)
    counts = doc["counts"]
    console.print(
        Text(
            f"{counts['slower']} slower, {counts['faster']} faster, {counts['same']} same within "
            f"±{doc['margin_pct']:g}%, {counts['inconclusive']} inconclusive, "
            f"{counts['not comparable']} not comparable (unit of replication: execution)"
        )
    )
    if doc["payload"]["changed"]:
        console.print(Text(f"warning: {doc['payload']['note']}", style="bold yellow"))
    if doc["params"]["changed"]:
        console.print(Text(f"warning: {doc['params']['note']}", style="bold yellow"))
    if doc["host"]["confounded"]:
        console.print(Text(f"warning: {doc['host']['note']}", style="bold yellow"))
    elif doc["host"]["matmul_change_pct"] is not None:
        console.print(
            Text(
                f"host speed (calibration probe, B vs A): {doc['host']['matmul_change_pct']:+.1f}% matmul; "
                f"largest swing within a run {doc['host']['within_run_swing_pct']:.1f}%"
            )
        )
    if doc["only_in_a"] or doc["only_in_b"]:
        console.print(
            Text(
                f"not compared: {len(doc['only_in_a'])} cell(s) measured only in A, "
                f"{len(doc['only_in_b'])} only in B"
            )
        )
    if not doc["cells"]:
        console.print("no cell was measured in both runs")
    threshold = doc["fail_on_regression_pct"]
    if threshold is None:
        return
    if doc["regressions"]:
        console.print(
            Text(
                f"regression gate FAILED: {len(doc['regressions'])} cell(s) whose CI lower bound is "
                f"more than "
                f"{threshold:g}% slower: {', '.join(doc['regressions'])}",
                style="bold red",
            )
        )
    else:
        open_cells = [
            c["cell_id"] for c in doc["cells"] if c["ci"][1] is not None and c["ci"][1] > 1 + threshold / 100
        ]
        extra = (
            f"; {len(open_cells)} cell(s) could still hide one (CI upper bound beyond it): "
            + ", ".join(open_cells)
            if open_cells
            else ""
        )
        console.print(
            Text(
                f"regression gate passed: no cell's CI lower bound is more than {threshold:g}% slower{extra}"
            )
        )
