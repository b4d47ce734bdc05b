"""Comparisons of cells: ratio of step times with an execution-level CI, a verdict against the
equivalence margin, and the one definition of a regression (shared by `compare` and history)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis import verdicts
from harness.analysis.cells import CellTable
from harness.analysis.estimators import ALPHA, ratio_interval, welch_log_p

Doc = dict[str, Any]
ACC_TOLERANCE = 0.05
LOSS_REL_TOLERANCE = 0.25


@dataclass(frozen=True)
class BaselineChoice:
    requested: str | None
    used: str | None
    note: str | None


def image_order(manifest: Doc, stats: pd.DataFrame) -> list[str]:
    order: list[str] = []
    for cell in manifest.get("cells") or []:
        img = cell.get("image") if isinstance(cell, dict) else None
        if isinstance(img, str) and img not in order:
            order.append(img)
    for img in stats["image"] if len(stats) else []:
        if img not in order:
            order.append(str(img))
    return order


def _declared_tf(stats: pd.DataFrame, image: str) -> str:
    rows: list[Any] = list(stats.loc[stats["image"] == image, "declared_tf"]) if len(stats) else []
    return next((str(v) for v in rows if v), "")


def choose_baseline(manifest: Doc, stats: pd.DataFrame) -> BaselineChoice:
    """The manifest's baseline image (default: the TF1 entry); falls back to the first image with ok cells."""
    images = image_order(manifest, stats)
    requested = manifest.get("baseline")
    if not isinstance(requested, str) or not requested:
        tf1 = [i for i in images if _declared_tf(stats, i).startswith("1.")]
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


def compare_pairs(
    a: CellTable, b: CellTable, pairs: pd.DataFrame, margin_pct: float = verdicts.DEFAULT_MARGIN_PCT
) -> pd.DataFrame:
    """Ratio B/A of step times for pairs (columns a_cell, b_cell) of measured cells, its CI from the two
    independent hierarchical bootstraps, Welch p on log execution medians, and the verdict kind."""
    pairs = pairs[pairs["a_cell"].isin(a.executions.keys()) & pairs["b_cell"].isin(b.executions.keys())]
    out = pairs.reset_index(drop=True).copy()
    rows: list[dict[str, float]] = []
    for ca, cb in zip(out["a_cell"], out["b_cell"], strict=True):
        ea, eb = a.executions[ca], b.executions[cb]
        ratio = float(eb.mean() / ea.mean())
        lo, hi = ratio_interval(a.boot[ca], b.boot[cb], len(ea), len(eb))
        rows.append(
            {
                "ratio": ratio,
                "ratio_lo": lo,
                "ratio_hi": hi,
                "p": welch_log_p(ea, eb),
                "a_n_exec": len(ea),
                "b_n_exec": len(eb),
                "half_width_pct": verdicts.half_width_pct(ratio, lo, hi),
            }
        )
    cols = ["ratio", "ratio_lo", "ratio_hi", "p", "a_n_exec", "b_n_exec", "half_width_pct"]
    vals = pd.DataFrame(rows, columns=cols)
    for col in cols:
        out[col] = vals[col].to_numpy() if len(vals) else np.array([], dtype=float)
    out["kind"] = [
        verdicts.classify(r, lo, hi, margin_pct)
        for r, lo, hi in zip(out["ratio"], out["ratio_lo"], out["ratio_hi"], strict=True)
    ]
    out["significant"] = (out["p"] < ALPHA) & ((out["ratio_lo"] > 1) | (out["ratio_hi"] < 1))
    out["margin_pct"] = margin_pct
    return out


def annotate(
    out: pd.DataFrame, a: CellTable, b: CellTable, name_a: str = "", name_b: str = ""
) -> pd.DataFrame:
    """Add names, step times, quality deltas, warnings and the verdict sentence to compared pairs."""
    sa = a.stats.loc[out["a_cell"]].reset_index(drop=True)
    sb = b.stats.loc[out["b_cell"]].reset_index(drop=True)
    out["a_image"] = sa["image"].to_numpy()
    out["b_image"] = sb["image"].to_numpy()
    out["workload"] = sb["workload"].to_numpy()
    out["params_label"] = sb["params_label"].to_numpy()
    out["params_short"] = sb["params_short"].to_numpy()
    out["a_step_s"] = sa["step_s"].to_numpy()
    out["b_step_s"] = sb["step_s"].to_numpy()
    out["a_contended"] = sa["n_contended"].to_numpy()
    out["b_contended"] = sb["n_contended"].to_numpy()
    out["warnings"] = [
        "; ".join(x for x in (f"A: {wa}" if wa else "", f"B: {wb}" if wb else "") if x)
        for wa, wb in zip(sa["warnings"], sb["warnings"], strict=True)
    ]
    names_b = [name_b] * len(out) if name_b else list(out["b_image"])
    names_a = [name_a] * len(out) if name_a else list(out["a_image"])
    out["verdict"] = [
        verdicts.wording(nb, na, r, lo, hi, float(m))
        for nb, na, r, lo, hi, m in zip(
            names_b, names_a, out["ratio"], out["ratio_lo"], out["ratio_hi"], out["margin_pct"], strict=True
        )
    ]
    out["direction"] = [k if k in ("slower", "faster") else "same" for k in out["kind"]]
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


def reclassify(out: pd.DataFrame, margin_pct: float, name_a: str = "", name_b: str = "") -> pd.DataFrame:
    """Verdict kind and sentence again after the CI columns changed (e.g. widened for a host change)."""
    out = out.copy()
    out["kind"] = [
        verdicts.classify(r, lo, hi, margin_pct)
        for r, lo, hi in zip(out["ratio"], out["ratio_lo"], out["ratio_hi"], strict=True)
    ]
    names_b = [name_b] * len(out) if name_b else list(out["b_image"])
    names_a = [name_a] * len(out) if name_a else list(out["a_image"])
    out["verdict"] = [
        verdicts.wording(nb, na, r, lo, hi, margin_pct)
        for nb, na, r, lo, hi in zip(
            names_b, names_a, out["ratio"], out["ratio_lo"], out["ratio_hi"], strict=True
        )
    ]
    out["direction"] = [k if k in ("slower", "faster") else "same" for k in out["kind"]]
    return out


def baseline_pairs(cells: CellTable, baseline: str | None) -> pd.DataFrame:
    """Each measured non-baseline cell with the baseline cell of equal (device, workload, params)."""
    st = cells.stats[cells.stats["measured"]]
    cols = ["device", "workload", "params_key"]
    base = st[st["image"] == baseline].reset_index()[[*cols, "cell_id"]].rename(columns={"cell_id": "a_cell"})
    other = st[st["image"] != baseline].reset_index()[[*cols, "cell_id"]]
    return other.rename(columns={"cell_id": "b_cell"}).merge(base, on=cols, how="inner")[["a_cell", "b_cell"]]


def compare_to_baseline(
    cells: CellTable, baseline: str | None, margin_pct: float = verdicts.DEFAULT_MARGIN_PCT
) -> pd.DataFrame:
    out = compare_pairs(cells, cells, baseline_pairs(cells, baseline), margin_pct)
    return annotate(out, cells, cells)


def compare_cells_across(
    a: CellTable, b: CellTable, margin_pct: float = verdicts.DEFAULT_MARGIN_PCT
) -> pd.DataFrame:
    """Cells measured in both tables, matched by cell_id: B vs A."""
    common = sorted(set(a.executions) & set(b.executions))
    out = compare_pairs(a, b, pd.DataFrame({"a_cell": common, "b_cell": common}), margin_pct)
    return annotate(out, a, b, name_a="A", name_b="B")


def regressed(comparisons: pd.DataFrame, threshold_pct: float) -> pd.Series:
    """B slower than A beyond threshold_pct: the CI's lower bound of the ratio is beyond it."""
    if comparisons.empty:
        return pd.Series(dtype=bool)
    return pd.Series(
        [verdicts.regression(float(lo), threshold_pct) for lo in comparisons["ratio_lo"]],
        index=comparisons.index,
        dtype=bool,
    )


def geometric_mean_ratios(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Per compared image: geometric mean of step-time ratios over all paired cells (one overall number)."""
    if comparisons.empty:
        return pd.DataFrame(columns=["b_image", "a_image", "geomean", "n"])
    logr = np.log(comparisons["ratio"])
    g = logr.groupby([comparisons["b_image"], comparisons["a_image"]], sort=False)
    return pd.DataFrame({"geomean": np.exp(g.mean()), "n": g.size()}).reset_index()
