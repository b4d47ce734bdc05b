"""Number formatting for the HTML report: the Jinja filters (``ms``, ``num``, ``pct`` …) as plain functions.

Every formatter takes any value and shows a missing or non-finite number as a dash (bytes: "not available"),
so a partial record never breaks a page.
"""

from __future__ import annotations

import math
from typing import Any

from harness import analysis

DASH = "\u2013"  # shown for a missing number


def finite(x: Any) -> bool:
    """Whether ``x`` is a finite int or float (not a bool)."""
    kind = type(x)
    if kind is float or kind is int:  # fast path for the common case; same answer as below
        return math.isfinite(x)
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def fmt_ms(seconds: Any) -> str:
    return f"{seconds * 1000:.3g} ms" if finite(seconds) else DASH


def fmt_num(x: Any, digits: int = 3) -> str:
    if not finite(x):
        return DASH
    return f"{x:,.0f}" if abs(x) >= 10 ** max(digits, 3) else format(x, _G_SPECS.get(digits) or f".{digits}g")


_G_SPECS = {d: f".{d}g" for d in range(1, 10)}


def fmt_pct(x: Any) -> str:
    return f"{x * 100:.1f}%" if finite(x) else DASH


def fmt_bytes(x: Any) -> str:
    if not finite(x):
        return "not available"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(x) < 1024 or unit == "TiB":
            return f"{x:.0f} {unit}" if unit == "B" else f"{x:.1f} {unit}"
        x /= 1024
    return "not available"  # pragma: no cover


def fmt_flops(x: Any) -> str:
    if not finite(x):
        return DASH
    for unit, scale in (("TFLOP/s", 1e12), ("GFLOP/s", 1e9), ("MFLOP/s", 1e6)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} FLOP/s"


def fmt_ratio(x: Any) -> str:
    return f"{x:.2f}{analysis.TIMES}" if finite(x) else DASH


def sort_key(x: Any) -> str:
    """Value for the data-sort attribute: numbers as repr, missing as empty."""
    return repr(float(x)) if finite(x) else ""
