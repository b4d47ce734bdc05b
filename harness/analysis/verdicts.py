"""Verdicts with a practical-equivalence margin, and their wording (pure functions, no pandas).

A ratio is B's step time / A's step time (> 1: B is slower). With margin m (e.g. 3%) the band of practical
equivalence is [1/(1+m), 1+m] (symmetric in log space):

* ``slower`` / ``faster``: the whole CI lies beyond the band;
* ``same``: the whole CI lies inside the band ("same within ±m%");
* ``inconclusive``: the CI reaches across an edge of the band (more executions would narrow it);
* ``not comparable``: no interval (fewer than two ok executions on a side).

The wording always quotes the ratio and its CI, so a reader can check the verdict against the numbers.
"""

from __future__ import annotations

import math
from typing import Literal

Kind = Literal["slower", "faster", "same", "inconclusive", "not comparable"]
KINDS: tuple[Kind, ...] = ("slower", "faster", "same", "inconclusive", "not comparable")
DEFAULT_MARGIN_PCT = 3.0
TIMES = "\u00d7"


def band(margin_pct: float) -> tuple[float, float]:
    up = 1 + margin_pct / 100
    return 1 / up, up


def classify(ratio: float, lo: float, hi: float, margin_pct: float) -> Kind:
    if not all(math.isfinite(x) for x in (ratio, lo, hi)):
        return "not comparable"
    down, up = band(margin_pct)
    if lo > up:
        return "slower"
    if hi < down:
        return "faster"
    if lo >= down and hi <= up:
        return "same"
    return "inconclusive"


def _ratio_text(ratio: float, lo: float, hi: float) -> str:
    return f"{ratio:.3f}{TIMES} [{lo:.3f}, {hi:.3f}]"


def wording(name_b: str, name_a: str, ratio: float, lo: float, hi: float, margin_pct: float) -> str:
    """One sentence for a comparison, consistent with `classify` in every case."""
    kind = classify(ratio, lo, hi, margin_pct)
    m = f"\u00b1{margin_pct:g}%"
    if kind == "not comparable":
        return f"{name_b} vs {name_a}: not comparable (needs at least two ok executions on each side)"
    if kind == "slower":
        return (
            f"{name_b} is {ratio:.2f}{TIMES} [{lo:.2f}, {hi:.2f}] slower than {name_a} "
            f"(step time; the whole 95% CI is beyond the {m} margin)"
        )
    if kind == "faster":
        return (
            f"{name_b} is {1 / ratio:.2f}{TIMES} [{1 / hi:.2f}, {1 / lo:.2f}] faster than {name_a} "
            f"(step time; the whole 95% CI is beyond the {m} margin)"
        )
    if kind == "same":
        return f"{name_b} and {name_a}: same within {m} (step time ratio {_ratio_text(ratio, lo, hi)})"
    return (
        f"inconclusive: {name_b} vs {name_a} step time ratio {_ratio_text(ratio, lo, hi)}; "
        f"the 95% CI reaches across the {m} margin"
    )


def regression(lo: float, threshold_pct: float) -> bool:
    """A regression beyond threshold: the CI's lower bound of the slowdown is beyond it (the point
    estimate alone never decides)."""
    return math.isfinite(lo) and lo > 1 + threshold_pct / 100


def half_width_pct(ratio: float, lo: float, hi: float) -> float:
    """The larger distance from the ratio to a CI bound, in percent of the ratio (nan: no CI)."""
    if not all(math.isfinite(x) for x in (ratio, lo, hi)) or ratio <= 0:
        return math.nan
    return max(hi / ratio - 1, 1 - lo / ratio) * 100


#: where a ratio's CI lies against a regression threshold (`harness bisect`)
ThresholdSide = Literal["beyond", "within", "undecided"]


def threshold_side(lo: float, hi: float, threshold_pct: float) -> ThresholdSide:
    """``beyond``: a regression beyond the threshold (`regression`: the whole CI is above 1 + threshold);
    ``within``: the whole CI lies at or below 1 + threshold (no regression that large, faster included);
    ``undecided``: the CI reaches across 1 + threshold, or there is no CI."""
    if regression(lo, threshold_pct):
        return "beyond"
    if math.isfinite(lo) and math.isfinite(hi) and hi <= 1 + threshold_pct / 100:
        return "within"
    return "undecided"
