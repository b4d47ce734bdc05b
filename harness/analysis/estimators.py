"""Estimators at the level of executions: numpy and scipy only, no pandas.

The unit of replication is an execution (a fresh process in a fresh container). The windows inside one
execution share its JIT state, allocator, thread placement and host conditions, so they are not independent
samples: every interval and test here resamples or compares *executions*, and treats windows only as the
noisy measurement of each execution's own median.

* Hierarchical (two-level) bootstrap: resample executions with replacement, then the windows inside each
  drawn execution; the statistic is the mean of the drawn executions' median window step time.
* With few executions the percentile bootstrap is too narrow (it behaves like a z-interval with a
  downward-biased standard deviation). The interval is therefore taken at Hesterberg's *expanded* level
  (alpha' = 2 Phi(-sqrt(n/(n-1)) t_{1-alpha/2, n-1})), which gives it the width of a t-interval.
* Significance: Welch's t-test on the log of the per-execution medians (never on pooled windows).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import special
from scipy import stats as sps

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
#: what seeds a generator: an int, or a sequence of ints (e.g. a run's seed and a cell's key)
Seed = int | Sequence[int]

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95
ALPHA = 0.05
#: below this many executions per side an interval cannot be formed
MIN_EXECUTIONS = 2


def bootstrap_medians(
    groups: Sequence[FloatArray], seed: Seed, n_boot: int = BOOTSTRAP_RESAMPLES
) -> FloatArray:
    """Bootstrap distributions of the median, one row per group (shape: len(groups) x n_boot).

    Exact percentile bootstrap, computed without materialising the resamples: once a group is sorted, the
    median of a resample drawn with indices `idx` is x[sorted(idx)[mid]] (the mean of the two middle ones for
    even n), because x is monotone in its index. So one index matrix per sample size serves every group of
    that size in O(groups x n_boot). Groups of equal size share resample indices: callers that combine rows
    decouple them by rotating columns (see `hierarchical_means`). Deterministic per seed.
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
        med = xs[:, lo_pos]
        med += xs[:, hi_pos]
        med /= 2
        out[rows] = med
    return out


def hierarchical_means(executions: Sequence[Sequence[int]], exec_boot: FloatArray, seed: Seed) -> FloatArray:
    """Two-level bootstrap of the mean of per-execution medians, one row per cell.

    `executions[c]` lists the rows of `exec_boot` (per-execution bootstrap medians of the windows, see
    `bootstrap_medians`) that belong to cell c. Resample j of cell c draws len(executions[c]) executions
    with replacement and takes, for each drawn execution, one of its own window-level resamples (columns
    rotated by a random offset per execution, so executions with equal window counts stay independent).
    """
    n_boot = exec_boot.shape[1]
    out: FloatArray = np.full((len(executions), n_boot), np.nan)
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, n_boot, size=exec_boot.shape[0])
    cols = np.arange(n_boot)[:, None]
    for c, rows in enumerate(executions):
        k = len(rows)
        if k == 0:
            continue
        pick = np.asarray(rows, dtype=np.intp)[rng.integers(0, k, size=(n_boot, k))]
        out[c] = exec_boot[pick, (cols + offsets[pick]) % n_boot].mean(axis=1)
    return out


def bootstrap_means(values: FloatArray, seed: int, n_boot: int = BOOTSTRAP_RESAMPLES) -> FloatArray:
    """Bootstrap distribution of the mean of per-execution values (one level: each value is already one
    execution's figure, e.g. a phase's time). Deterministic per seed; all NaN for no values."""
    xs = np.asarray(values, dtype=float)
    if not xs.size:
        return np.full(n_boot, np.nan)
    rng = np.random.default_rng(seed)
    out: FloatArray = xs[rng.integers(0, xs.size, size=(n_boot, xs.size))].mean(axis=1)
    return out


@functools.lru_cache(maxsize=256)
def expanded_confidence(n: int, confidence: float = CONFIDENCE) -> float:
    """Hesterberg's expanded percentile level for n observations at the top level (nan below 2); cached:
    a run asks it for the same few n once per cell and per comparison."""
    if n < MIN_EXECUTIONS:
        return math.nan
    alpha = 1 - confidence
    t = float(sps.t.ppf(1 - alpha / 2, n - 1))
    adjusted = 2 * float(sps.norm.cdf(-math.sqrt(n / (n - 1)) * t))
    return 1 - adjusted


def percentile_interval(boot: FloatArray, confidence: float) -> tuple[float, float]:
    """The equal-tailed percentile interval of one bootstrap distribution (NaNs ignored)."""
    values = boot[np.isfinite(boot)]
    if not values.size or not math.isfinite(confidence):
        return math.nan, math.nan
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(values, [tail, 1 - tail])
    return float(lo), float(hi)


def welch_log_p(a: FloatArray, b: FloatArray) -> float:
    """Two-sided Welch t-test on log per-execution medians; nan with fewer than 2 executions a side or
    when both sides have no spread at all."""
    if len(a) < MIN_EXECUTIONS or len(b) < MIN_EXECUTIONS:
        return math.nan
    la, lb = np.log(a), np.log(b)
    if np.ptp(la) == 0 and np.ptp(lb) == 0:
        return 0.0 if la[0] != lb[0] else 1.0
    # Welch's statistic and Welch-Satterthwaite degrees of freedom, as scipy.stats.ttest_ind(equal_var=False)
    # computes them (tested against it), without its per-call overhead: a run has one test per comparison
    va, vb = float(np.var(la, ddof=1)) / len(la), float(np.var(lb, ddof=1)) / len(lb)
    with np.errstate(all="ignore"):
        t = (float(np.mean(lb)) - float(np.mean(la))) / math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(la) - 1) + vb**2 / (len(lb) - 1))
        p = float(2 * special.stdtr(df, -abs(t)))
    return p if math.isfinite(p) else math.nan


def ratio_interval(
    boot_a: FloatArray, boot_b: FloatArray, n_a: int, n_b: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """CI of B/A from independent hierarchical bootstraps, at the level expanded for min(n_a, n_b)."""
    level = expanded_confidence(min(n_a, n_b), confidence)
    with np.errstate(all="ignore"):
        ratios = boot_b / boot_a
    return percentile_interval(ratios, level)
