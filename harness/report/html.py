"""Static HTML reports (Jinja2, autoescape on for every template): the only module that imports jinja2.

`render_run_report` writes `<reports>/<run-id>/index.html`, `render_site_index` writes `<reports>/index.html`.
Pages are self-contained (inline CSS, inline SVG charts, a few lines of inline JS for sortable tables) and
deterministic: nothing depends on the render time, so the same run renders byte-identical HTML. What a page
shows is built in `harness.report.view`, its numbers are formatted by `harness.report.htmlformat` (the
filters).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from urllib.parse import quote

import jinja2

from harness.analysis import stored
from harness.atomicfile import write_text
from harness.report.htmlformat import fmt_bytes, fmt_flops, fmt_ms, fmt_num, fmt_pct, fmt_ratio, sort_key
from harness.report.view import Doc, model_rows, run_context
from harness.results.store import RunData
from harness.safenames import name_from


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", "templates"),
        autoescape=True,  # everything, whatever the template's extension
        undefined=jinja2.ChainableUndefined,  # partial documents render as blanks, never crash
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        ms=fmt_ms,
        num=fmt_num,
        pct=fmt_pct,
        bytes=fmt_bytes,
        flops=fmt_flops,
        ratio=fmt_ratio,
        sortkey=sort_key,
    )
    return env


# ------------------------------------------------------------------------------------------ rendering


def render_run_html(run: RunData, history: Sequence[RunData] = (), include_contended: bool = False) -> str:
    return environment().get_template("run.html.j2").render(run_context(run, history, include_contended))


def render_run_report(
    run: RunData, out_dir: Path, history: Sequence[RunData] = (), include_contended: bool = False
) -> Path:
    """Write `<out_dir>/<run-id>/index.html` (self-contained) and return its path."""
    path = out_dir / name_from(run.run_id) / "index.html"
    write_text(path, render_run_html(run, history, include_contended))
    return path


def site_entries(runs: Iterable[RunData]) -> list[Doc]:
    entries = []
    for run in sorted(runs, key=lambda r: r.run_id, reverse=True):
        ana = stored.load(run)
        entries.append(
            {
                "run_id": run.run_id,
                "href": quote(name_from(run.run_id)) + "/index.html",
                "profile": run.manifest.get("profile"),
                "started_at": run.manifest.get("started_at"),
                "finished_at": run.manifest.get("finished_at"),
                "images": ana.images,
                "counts": sorted(ana.status_counts.items()),
                "baseline": ana.baseline,
                "geomeans": model_rows(ana.geomeans),
            }
        )
    return entries


def render_site_index(reports_dir: Path, runs: list[RunData]) -> Path:
    """Write `<reports_dir>/index.html` listing runs newest first with headline numbers."""
    html = environment().get_template("index.html.j2").render(entries=site_entries(runs))
    path = reports_dir / "index.html"
    write_text(path, html)
    return path
