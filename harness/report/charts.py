"""Inline SVG charts, pure Python (no dependencies).

Every piece of text that reaches the SVG goes through `esc` (html.escape with quotes), numbers are formatted
by us. The result is an `Svg` string carrying `__html__`, so Jinja2 (autoescape on) inserts it as markup
without any `|safe` in templates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#edc948", "#9c755f", "#bab0ac")
FONT = "font-family:system-ui,sans-serif;font-size:12px"


class Svg(str):
    """SVG markup produced (and escaped) by this module."""

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _num(x: float) -> str:
    return f"{x:.1f}"


def finite(*xs: float) -> bool:
    return all(isinstance(x, int | float) and math.isfinite(x) for x in xs)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    lo: float = math.nan
    hi: float = math.nan
    series: int = 0
    note: str = ""


def bar_chart(
    bars: Sequence[Bar], unit: str, title: str, legend: Sequence[str] = (), width: int = 900
) -> Svg:
    """Horizontal bars (one per row) with CI error bars; `series` picks the colour (e.g. the image)."""
    label_w, row_h, top = _label_width([b.label for b in bars]), 18, 26 + (16 if legend else 0)
    plot_w = width - label_w - 90
    vmax = (
        max((max(b.value, b.hi if finite(b.hi) else 0) for b in bars if finite(b.value)), default=1.0) or 1.0
    )
    height = top + row_h * len(bars) + 26
    parts = [_open(width, height, title), f'<text x="4" y="16" font-weight="bold">{esc(title)}</text>']
    parts += _legend(legend, 4, 34)
    for i, bar in enumerate(bars):
        y = top + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{esc(bar.label)}</text>')
        if not finite(bar.value):
            parts.append(f'<text x="{label_w + 4}" y="{y + 13}" fill="#888">not measured</text>')
            continue
        w = plot_w * bar.value / vmax
        tip = f"{bar.label}: {bar.value:.4g} {unit}"
        if finite(bar.lo, bar.hi):
            tip += f" [{bar.lo:.4g}, {bar.hi:.4g}]"
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{_num(max(w, 0.5))}" height="{row_h - 6}" '
            f'fill="{color(bar.series)}"><title>{esc(tip)}</title></rect>'
        )
        if finite(bar.lo, bar.hi):
            x1, x2, cy = label_w + plot_w * bar.lo / vmax, label_w + plot_w * bar.hi / vmax, y + row_h / 2
            parts.append(
                f'<path class="ci" d="M{_num(x1)} {_num(cy)}H{_num(x2)}M{_num(x1)} {_num(cy - 4)}v8'
                f'M{_num(x2)} {_num(cy - 4)}v8" stroke="#222" fill="none"/>'
            )
        end = label_w + plot_w * max(bar.value, bar.hi if finite(bar.hi) else 0) / vmax
        text = f"{bar.value:.4g}" + (f" {bar.note}" if bar.note else "")
        parts.append(f'<text x="{_num(end + 4)}" y="{y + 13}">{esc(text)}</text>')
    parts.append(_axis(label_w, plot_w, top + row_h * len(bars), vmax, unit))
    parts.append("</svg>")
    return Svg("".join(parts))


@dataclass(frozen=True)
class Stack:
    label: str
    values: Sequence[float]


def stacked_bars(
    stacks: Sequence[Stack], segments: Sequence[str], unit: str, title: str, width: int = 900
) -> Svg:
    """Horizontal stacked bars: one bar per row, one coloured segment per entry of `segments`."""
    label_w, row_h, top = _label_width([s.label for s in stacks]), 18, 44
    plot_w = width - label_w - 70
    totals = [sum(v for v in s.values if finite(v)) for s in stacks]
    vmax = max(totals, default=1.0) or 1.0
    height = top + row_h * len(stacks) + 26
    parts = [_open(width, height, title), f'<text x="4" y="16" font-weight="bold">{esc(title)}</text>']
    parts += _legend(segments, 4, 34)
    for i, (stack, total) in enumerate(zip(stacks, totals, strict=True)):
        y = top + i * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{esc(stack.label)}</text>')
        x = float(label_w)
        for j, v in enumerate(stack.values):
            if not finite(v) or v <= 0:
                continue
            w = plot_w * v / vmax
            tip = f"{segments[j] if j < len(segments) else j}: {v:.3g} {unit}"
            parts.append(
                f'<rect x="{_num(x)}" y="{y + 3}" width="{_num(w)}" height="{row_h - 6}" fill="{color(j)}">'
                f"<title>{esc(tip)}</title></rect>"
            )
            x += w
        parts.append(f'<text x="{_num(x + 4)}" y="{y + 13}">{esc(f"{total:.3g}")}</text>')
    parts.append(_axis(label_w, plot_w, top + row_h * len(stacks), vmax, unit))
    parts.append("</svg>")
    return Svg("".join(parts))


@dataclass(frozen=True)
class Point:
    label: str
    value: float
    lo: float = math.nan
    hi: float = math.nan
    flag: bool = False


def trend_chart(points: Sequence[Point], title: str, unit: str, width: int = 300, height: int = 80) -> Svg:
    """A small line chart (oldest left) with CI whiskers; flagged points (regressions) drawn red."""
    pad_l, pad_r, pad_t, pad_b = 6, 60, 18, 8
    vals = [v for p in points for v in (p.value, p.lo, p.hi) if finite(v)]
    if not vals:
        return Svg(_open(width, 20, title) + '<text x="4" y="14">no data</text></svg>')
    vmin, vmax = min(vals), max(vals)
    span = (vmax - vmin) or max(abs(vmax), 1e-12) * 0.1
    vmin, vmax = vmin - span * 0.1, vmax + span * 0.1
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    n = len(points)

    def px(i: int) -> float:
        return pad_l + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def py(v: float) -> float:
        return pad_t + plot_h * (1 - (v - vmin) / (vmax - vmin))

    parts = [_open(width, height, title), f'<text x="4" y="12" fill="#555">{esc(title)}</text>']
    line = [f"{_num(px(i))},{_num(py(p.value))}" for i, p in enumerate(points) if finite(p.value)]
    if len(line) > 1:
        parts.append(f'<polyline points="{" ".join(line)}" fill="none" stroke="{PALETTE[0]}"/>')
    for i, p in enumerate(points):
        if not finite(p.value):
            continue
        x = px(i)
        if finite(p.lo, p.hi):
            parts.append(f'<path d="M{_num(x)} {_num(py(p.lo))}V{_num(py(p.hi))}" stroke="#999"/>')
        fill = "#d62728" if p.flag else PALETTE[0]
        tip = f"{p.label}: {p.value:.4g} {unit}"
        parts.append(
            f'<circle cx="{_num(x)}" cy="{_num(py(p.value))}" r="3" fill="{fill}">'
            f"<title>{esc(tip)}</title></circle>"
        )
    last = points[-1]
    if finite(last.value):
        parts.append(
            f'<text x="{width - pad_r + 4}" y="{_num(py(last.value) + 4)}">{esc(f"{last.value:.3g}")}</text>'
        )
    parts.append("</svg>")
    return Svg("".join(parts))


def _label_width(labels: Sequence[str]) -> int:
    """Room for the longest row label (about 7 px per character at 12 px), between 120 and 420 px."""
    return min(420, max(120, 12 + 7 * max((len(x) for x in labels), default=0)))


def _open(width: int, height: float, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{esc(title)}" width="{width}" '
        f'height="{_num(height)}" viewBox="0 0 {width} {_num(height)}" style="{FONT}">'
    )


def _legend(names: Sequence[str], x0: int, y: int) -> list[str]:
    parts: list[str] = []
    x = float(x0)
    for i, name in enumerate(names):
        parts.append(f'<rect x="{_num(x)}" y="{y - 9}" width="10" height="10" fill="{color(i)}"/>')
        parts.append(f'<text x="{_num(x + 14)}" y="{y}">{esc(name)}</text>')
        x += 24 + 7 * len(str(name))
    return parts


def _axis(x0: int, plot_w: int, y: float, vmax: float, unit: str) -> str:
    ticks = []
    for k in range(5):
        v = vmax * k / 4
        x = x0 + plot_w * k / 4
        ticks.append(f'<path d="M{_num(x)} {_num(y)}v4" stroke="#888"/>')
        ticks.append(
            f'<text x="{_num(x)}" y="{_num(y + 16)}" text-anchor="middle" fill="#555">{v:.3g}</text>'
        )
    return (
        f'<g class="axis"><path d="M{x0} {_num(y)}H{x0 + plot_w}" stroke="#888"/>{"".join(ticks)}'
        f'<text x="{x0 + plot_w + 26}" y="{_num(y + 16)}" fill="#555">{esc(unit)}</text></g>'
    )
