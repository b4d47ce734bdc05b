"""`harness report` (and `run --report`, `bisect --report`): the run's page and the site index, with the
runs they need read and validated first -- an invalid run to report is an error (exit 2) before anything is
written; an invalid run among the history or the other runs of the folder is skipped (and said why)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.analysis.stored import refresh_all
from harness.report.html import render_run_report, render_site_index
from harness.results.store import RunData, list_runs, load_run, load_runs


@dataclass(frozen=True)
class Rendered:
    page: Path
    index: Path
    #: runs left out of the history or the index: (folder, why)
    skipped: list[tuple[Path, str]]


def render_with_index(
    run_path: Path, reports_dir: Path, history_dir: Path | None = None, include_contended: bool = False
) -> Rendered:
    run = load_run(run_path)
    here = run_path.resolve()
    history: list[RunData] = []
    skipped: list[tuple[Path, str]] = []
    if history_dir is not None:
        history, skipped = load_runs([p for p in list_runs(history_dir) if p.resolve() != here])
    others, skipped_others = load_runs([p for p in list_runs(run_path.parent) if p.resolve() != here])
    skipped += [s for s in skipped_others if s not in skipped]
    runs = sorted([run, *others], key=lambda r: r.path.name)
    refresh_all([run, *history, *others])  # stale or missing analyses are recomputed once and stored
    page = render_run_report(run, reports_dir, history=history, include_contended=include_contended)
    return Rendered(page, render_site_index(reports_dir, runs), skipped)
