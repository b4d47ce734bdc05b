"""The timeline chart (inline SVG, no dependencies): step time with its CI against the TF release, the peak
memory of each release below it on the same axis, and the Keras 2 -> 3 boundary marked.

Text reaches the SVG only through `charts.esc`; the result is a `charts.Svg` (inserted as markup by Jinja).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.report.charts import FONT, PALETTE, Svg, esc, finite

WIDTH = 900
PAD_L, PAD_R = 120, 20
STEP_TOP, STEP_H = 30, 170
MEM_TOP, MEM_H = 255, 65
HEIGHT = MEM_TOP + MEM_H + 40


@dataclass(frozen=True)
class ReleasePoint:
    """One release of a series: its label (TF version), step time and CI (ms), peak memory (MiB)."""

    label: str
    value: float
    lo: float = math.nan
    hi: float = math.nan
    memory: float = math.nan
    keras: int | None = None


def _n(x: float) -> str:
    return f"{x:.1f}"


def _scale(values: list[float], zero: bool) -> tuple[float, float]:
    """(vmin, vmax) for a panel; `zero`: start at 0 (bars)."""
    if not values:
        return 0.0, 1.0
    vmin, vmax = (0.0 if zero else min(values)), max(values)
    span = (vmax - vmin) or max(abs(vmax), 1e-12) * 0.1
    return (vmin if zero else vmin - span * 0.1), vmax + span * 0.1


def release_chart(points: Sequence[ReleasePoint], title: str, unit: str = "ms / step") -> Svg:
    """Step time (dots, CI whiskers, a line) and peak memory (bars) per release, oldest left; a dashed
    line between the last Keras 2 and the first Keras 3 release."""
    n = len(points)
    plot_w = WIDTH - PAD_L - PAD_R

    def px(i: int) -> float:
        return PAD_L + plot_w * (i + 0.5) / max(n, 1)

    step_vals = [v for p in points for v in (p.value, p.lo, p.hi) if finite(v)]
    smin, smax = _scale(step_vals, zero=False)
    mem_vals = [p.memory for p in points if finite(p.memory)]
    _, mmax = _scale(mem_vals, zero=True)

    def sy(v: float) -> float:
        return STEP_TOP + STEP_H * (1 - (v - smin) / (smax - smin))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline-chart" role="img" '
        f'aria-label="{esc(title)}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" style="{FONT}">',
        f'<text x="4" y="16" font-weight="bold">{esc(title)}</text>',
        f'<text x="4" y="{STEP_TOP + STEP_H // 2}" fill="#555">{esc(unit)}</text>',
        f'<text x="4" y="{MEM_TOP + MEM_H // 2}" fill="#555">peak memory</text>',
        f'<text x="4" y="{MEM_TOP + MEM_H // 2 + 14}" fill="#555">(MiB)</text>',
    ]
    for k in range(3):  # step-time gridlines
        v = smin + (smax - smin) * k / 2
        parts.append(f'<path d="M{PAD_L} {_n(sy(v))}H{WIDTH - PAD_R}" stroke="#eee"/>')
        parts.append(
            f'<text x="{PAD_L - 4}" y="{_n(sy(v) + 4)}" text-anchor="end" fill="#555">{v:.3g}</text>'
        )
    parts += _keras_boundary(points, px)
    line = [f"{_n(px(i))},{_n(sy(p.value))}" for i, p in enumerate(points) if finite(p.value)]
    if len(line) > 1:
        parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{PALETTE[0]}"/>')
    for i, p in enumerate(points):
        x = px(i)
        parts.append(
            f'<text x="{_n(x)}" y="{MEM_TOP + MEM_H + 16}" text-anchor="middle">{esc(p.label)}</text>'
        )
        if finite(p.value):
            if finite(p.lo, p.hi):
                parts.append(
                    f'<path class="ci" d="M{_n(x)} {_n(sy(p.lo))}V{_n(sy(p.hi))}M{_n(x - 4)} {_n(sy(p.lo))}h8'
                    f'M{_n(x - 4)} {_n(sy(p.hi))}h8" stroke="#222" fill="none"/>'
                )
            tip = f"TF {p.label}: {p.value:.4g} {unit}"
            tip += f" [{p.lo:.4g}, {p.hi:.4g}]" if finite(p.lo, p.hi) else ""
            parts.append(
                f'<circle class="pt" cx="{_n(x)}" cy="{_n(sy(p.value))}" r="4" fill="{PALETTE[0]}">'
                f"<title>{esc(tip)}</title></circle>"
            )
        if finite(p.memory):
            h = MEM_H * p.memory / mmax
            bw = max(4.0, plot_w / max(n, 1) * 0.5)
            parts.append(
                f'<rect class="mem" x="{_n(x - bw / 2)}" y="{_n(MEM_TOP + MEM_H - h)}" width="{_n(bw)}" '
                f'height="{_n(h)}" fill="{PALETTE[1]}"><title>{esc(f"TF {p.label}: {p.memory:.0f} MiB")}'
                "</title></rect>"
            )
            y = _n(MEM_TOP + MEM_H - h - 3)
            parts.append(f'<text x="{_n(x)}" y="{y}" text-anchor="middle" fill="#555">{p.memory:.0f}</text>')
    parts.append(f'<path d="M{PAD_L} {MEM_TOP + MEM_H}H{WIDTH - PAD_R}" stroke="#888"/>')
    parts.append("</svg>")
    return Svg("".join(parts))


def _keras_boundary(points: Sequence[ReleasePoint], px: Callable[[int], float]) -> list[str]:
    """A dashed line (and its label) between each pair of neighbours whose Keras major differs."""
    out: list[str] = []
    for i in range(1, len(points)):
        a, b = points[i - 1].keras, points[i].keras
        if a is None or b is None or a == b:
            continue
        x = (px(i - 1) + px(i)) / 2
        out.append(
            f'<g class="keras-boundary"><path d="M{_n(x)} {STEP_TOP - 6}V{MEM_TOP + MEM_H}" stroke="#d62728" '
            f'stroke-dasharray="5,4"/><text x="{_n(x + 4)}" y="{STEP_TOP - 8}" fill="#d62728">'
            f"{esc(f'Keras {a} | Keras {b}')}</text></g>"
        )
    return out
