"""The public record against a run: for each claim (`publicclaims`), the pairs of this run's cells that speak
to it, their measured ratio with its execution-level CI, and a plain verdict.

Verdicts (with the run's practical-equivalence margin m, as every other verdict of the harness):

* ``same direction``: the whole CI lies beyond the margin on the side the claim reported;
* ``opposite``: the whole CI lies beyond the margin on the other side;
* ``no difference``: the whole CI lies inside ±m% (the reported effect did not show here);
* ``inconclusive``: the CI reaches across an edge of the margin (or includes 1), or there is no CI (fewer
  than two usable executions a side);
* ``cannot speak to``: no pair of cells of this run matches the claim; the reason names the missing side.

The reported magnitude is placed against the measured CI: ``inside``, ``above`` (reported larger than the
CI's upper bound), ``below`` or ``unknown``. Contended executions are excluded as everywhere else.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.analysis import verdicts
from harness.analysis.document import ClaimRow, RecordMeasurement
from harness.analysis.estimators import FloatArray, ratio_interval
from harness.analysis.publicclaims import Claim, Side
from harness.analysis.verdicts import TIMES

SAME, OPPOSITE, NO_DIFFERENCE, INCONCLUSIVE, CANNOT = (
    "same direction",
    "opposite",
    "no difference",
    "inconclusive",
    "cannot speak to",
)
VERDICTS = (SAME, OPPOSITE, NO_DIFFERENCE, INCONCLUSIVE, CANNOT, "mixed")
_OPS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "gt": (operator.gt, ">"),
    "ge": (operator.ge, "\u2265"),
    "lt": (operator.lt, "<"),
    "le": (operator.le, "\u2264"),
    "ne": (operator.ne, "\u2260"),
}


@dataclass(frozen=True)
class CellFacts:
    """What matching needs to know about one cell of the run, and its per-execution values of a metric."""

    cell_id: str
    image: str
    device: str
    workload: str
    params: dict[str, Any]
    #: the TF minor that ran (declared when it never ran), e.g. "2.21"
    tf_minor: str
    #: the Keras major that ran as tf.keras (None: unknown)
    keras: int | None
    #: per metric: the used executions' values (step: per-execution medians)
    values: dict[str, FloatArray] = field(default_factory=dict)
    #: per metric: a bootstrap distribution of the cell's mean
    boot: dict[str, FloatArray] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------- the verdict


def verdict(reported: float, ratio: float, lo: float, hi: float, margin_pct: float) -> str:
    """The plain verdict of a measured ratio [lo, hi] against a reported ratio (see the module doc)."""
    kind = verdicts.classify(ratio, lo, hi, margin_pct)
    if kind in ("not comparable", "inconclusive"):
        return INCONCLUSIVE
    said = verdicts.classify(reported, reported, reported, margin_pct)
    if kind == said:
        return SAME
    return NO_DIFFERENCE if kind == "same" else OPPOSITE


def magnitude(reported: float, lo: float, hi: float) -> str:
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "unknown"
    if reported > hi:
        return "above"
    return "below" if reported < lo else "inside"


def claim_verdict(measured: Sequence[str]) -> str:
    """One verdict for a claim: its measurements' common verdict, ``mixed``, or ``cannot speak to``."""
    kinds = set(measured)
    if not kinds:
        return CANNOT
    return kinds.pop() if len(kinds) == 1 else "mixed"


def sentence(reported: float, ratio: float, lo: float, hi: float, result: str, where: str) -> str:
    measured = (
        f"measured {ratio:.2f}{TIMES} [{lo:.2f}, {hi:.2f}]"
        if math.isfinite(lo) and math.isfinite(hi)
        else f"measured {ratio:.2f}{TIMES} (no CI: fewer than two usable executions a side)"
    )
    place = {
        "inside": "the reported figure lies inside the CI",
        "above": "the reported figure lies above the CI",
        "below": "the reported figure lies below the CI",
        "unknown": "",
    }[where]
    return f"{measured} vs reported {reported:g}{TIMES}: {result}" + (f"; {place}" if place else "")


# ---------------------------------------------------------------------------------------- matching


def _tf_tuple(minor: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in minor.split(".")[:2])
    except ValueError:
        return ()


def _param_ok(value: Any, cond: Any) -> bool:
    if isinstance(cond, dict):
        op, bound = next(iter(cond.items()))
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and _OPS[op][0](float(value), float(bound))
    return bool(value == cond)


def matches(cell: CellFacts, side: Side) -> bool:
    if cell.workload != side.workload:
        return False
    if not all(k in cell.params and _param_ok(cell.params[k], c) for k, c in side.params.items()):
        return False
    img, tf = side.image, _tf_tuple(cell.tf_minor)
    if img.tf_min is not None and not (tf and tf >= _tf_tuple(img.tf_min)):
        return False
    if img.tf_max is not None and not (tf and tf <= _tf_tuple(img.tf_max)):
        return False
    return img.keras is None or cell.keras == img.keras


def describe(side: Side) -> str:
    """'tiny_fit with loop=fit, val_samples>0 on an image with TF ≥ 2.13 and Keras 3'."""
    conds = []
    for name, cond in side.params.items():
        if isinstance(cond, dict):
            op, bound = next(iter(cond.items()))
            conds.append(f"{name}{_OPS[op][1]}{bound:g}")
        else:
            conds.append(f"{name}={cond}")
    text = side.workload + (f" with {', '.join(conds)}" if conds else "")
    img = []
    if side.image.tf_min:
        img.append(f"TF \u2265 {side.image.tf_min}")
    if side.image.tf_max:
        img.append(f"TF \u2264 {side.image.tf_max}")
    if side.image.keras:
        img.append(f"Keras {side.image.keras}")
    return text + (f" on an image with {' and '.join(img)}" if img else "")


def pairs(claim: Claim, cells: Sequence[CellFacts]) -> list[tuple[CellFacts, CellFacts]]:
    """(numerator, denominator) cells that speak to the claim: same device; same image (same_image) or two
    images (across_images); every parameter neither side names equal."""
    comp = claim.compare
    named = set(comp.numerator.params) | set(comp.denominator.params)
    nums = [c for c in cells if matches(c, comp.numerator)]
    dens = [c for c in cells if matches(c, comp.denominator)]
    out = []
    for n in nums:
        free = {k: v for k, v in n.params.items() if k not in named}
        for d in dens:
            if n.cell_id == d.cell_id or n.device != d.device:
                continue
            if (n.image == d.image) != (comp.pairing == "same_image"):
                continue
            if {k: v for k, v in d.params.items() if k not in named} == free:
                out.append((n, d))
    return out


def missing_reason(claim: Claim, cells: Sequence[CellFacts]) -> str:
    """Why no pair speaks to the claim."""
    comp = claim.compare
    missing = [
        f"no cell of this run is {describe(side)}"
        for side in (comp.numerator, comp.denominator)
        if not any(matches(c, side) for c in cells)
    ]
    if missing:
        return "; ".join(missing)
    found = pairs(claim, cells)
    if found:
        metric = comp.metric
        idle = sorted({c.image for pair in found for c in pair if not len(c.values.get(metric, ()))})
        return (
            f"the matching cells of {', '.join(idle)} have no usable {metric} values "
            "(unavailable, failed or contended executions, or a metric the workload does not report)"
        )
    where = "the same image" if comp.pairing == "same_image" else "two images"
    return f"the matching cells do not pair up (same device, {where}, the other parameters equal)"


# ---------------------------------------------------------------------------------------- assessment


def shown_params(claim: Claim, found: Sequence[tuple[CellFacts, CellFacts]]) -> list[str]:
    """The numerator's parameters a measurement names: those the claim selects on and those that differ
    between its pairs (e.g. input and val_samples when one claim pairs several tiny_fit cells)."""
    named = set(claim.compare.numerator.params)
    keys = {k for n, _ in found for k in n.params}
    varying = {k for k in keys if len({repr(n.params.get(k)) for n, _ in found}) > 1}
    return sorted(named | varying)


def measure(
    claim: Claim, num: CellFacts, den: CellFacts, margin_pct: float, shown: Sequence[str] = ()
) -> RecordMeasurement | None:
    metric = claim.compare.metric
    a, b = den.values.get(metric), num.values.get(metric)
    if a is None or b is None or not len(a) or not len(b):
        return None
    ratio = float(np.mean(b) / np.mean(a))
    lo, hi = ratio_interval(den.boot[metric], num.boot[metric], len(a), len(b))
    result = verdict(claim.ratio, ratio, lo, hi, margin_pct)
    where = magnitude(claim.ratio, lo, hi)
    short = ", ".join(f"{k}={num.params.get(k)}" for k in shown)
    return RecordMeasurement(
        numerator_cell=num.cell_id,
        denominator_cell=den.cell_id,
        numerator_image=num.image,
        denominator_image=den.image,
        params_short=short,
        ratio=ratio,
        ratio_lo=lo,
        ratio_hi=hi,
        n_numerator=len(b),
        n_denominator=len(a),
        verdict=result,
        magnitude=where,
        sentence=sentence(claim.ratio, ratio, lo, hi, result, where),
    )


def assess(claim: Claim, cells: Sequence[CellFacts], margin_pct: float) -> ClaimRow:
    matched = pairs(claim, cells)
    shown = shown_params(claim, matched)
    found = [m for n, d in matched if (m := measure(claim, n, d, margin_pct, shown)) is not None]
    comp = claim.compare
    return ClaimRow(
        id=claim.id,
        title=claim.title,
        sources=[s.model_dump() for s in claim.sources],
        setup=claim.setup,
        reported=claim.reported,
        reported_ratio=claim.ratio,
        ratio_basis=claim.ratio_basis,
        maintainers=claim.maintainers,
        note=claim.note,
        metric=comp.metric,
        numerator=describe(comp.numerator),
        denominator=describe(comp.denominator),
        verdict=claim_verdict([m.verdict for m in found]),
        reason=None if found else missing_reason(claim, cells),
        measurements=found,
    )


def assess_all(claims: Sequence[Claim], cells: Sequence[CellFacts], margin_pct: float) -> list[ClaimRow]:
    return [assess(c, cells, margin_pct) for c in claims]
