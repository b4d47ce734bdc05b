"""Analyse once, render many: the stored analysis of a run folder (`<run>/analysis.json`).

Computed when a run finishes (`harness.execution.session`) and when a merge finishes (`harness merge` passes
`refresh_folder` to `merge_runs`, which runs it before the merged folder is renamed into place); read by the
HTML report, `harness compare`, the terminal summary and the report's history. No pandas here until a
recomputation is needed.

Staleness rule: a stored analysis is used only when it has the current kind and schema version and its
`inputs` equal what the run holds now: the sha256 of the manifest, records and probes as read (upgraded),
their counts, the harness version that computed it, the seed and the contended view. Anything else (a missing,
unreadable, older or foreign document, records added by a resume, a newer harness) is recomputed from the
records, and stored again when asked to and the folder is writable. Only the default view (contended
executions excluded) is stored; ``--include-contended`` is recomputed in memory at every use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from harness import __version__
from harness.analysis.document import ANALYSIS_FILE, ANALYSIS_KIND, ANALYSIS_VERSION, AnalysisDoc, Inputs
from harness.atomicfile import write_text
from harness.digest import doc_sha256
from harness.results.store import RunData, load_run

#: the bootstrap seed of every stored analysis
SEED = 0


def analysis_path(run_dir: Path) -> Path:
    return run_dir / ANALYSIS_FILE


def inputs_of(run: RunData, include_contended: bool = False) -> Inputs:
    """The identity of what an analysis of `run` is computed from."""
    content = {"manifest": run.manifest, "records": run.records, "probes": run.probes}
    return Inputs(
        sha256=doc_sha256(content),
        n_records=len(run.records),
        n_probes=len(run.probes),
        harness_version=__version__,
        seed=SEED,
        include_contended=include_contended,
    )


def compute(run: RunData, include_contended: bool = False, inputs: Inputs | None = None) -> AnalysisDoc:
    """Analyse the run's records now (pandas, bootstrap): the only place a render's analysis comes from."""
    from harness import analysis

    ana = analysis.analyse_run(run, seed=SEED, include_contended=include_contended)
    ident = inputs if inputs is not None else inputs_of(run, include_contended)
    return analysis.analysis_document(ana, ident, analysis.definitions(ana.margin_pct))


def read_stored(run_dir: Path) -> AnalysisDoc | None:
    """The stored analysis when it is of the current kind and version, else None (absent, unreadable, old)."""
    try:
        text = analysis_path(run_dir).read_text(encoding="utf-8")
        raw = json.loads(text)
    except (OSError, ValueError):
        return None
    if not isinstance(raw, dict) or raw.get("kind") != ANALYSIS_KIND:
        return None
    if raw.get("schema_version") != ANALYSIS_VERSION:
        return None
    try:
        return AnalysisDoc.model_validate(raw)
    except ValidationError:
        return None


def store(run_dir: Path, doc: AnalysisDoc) -> bool:
    """Write the analysis beside the records (atomically); False when the folder is not writable."""
    try:
        write_text(analysis_path(run_dir), doc.to_json())
    except OSError:
        return False
    return True


def load(run: RunData, include_contended: bool = False, save: bool = False) -> AnalysisDoc:
    """The run's analysis: the stored one when it is current for these records, else recomputed (and, with
    `save`, stored when it is the default view). Pass `save` only for a run as it is on disk."""
    inputs = inputs_of(run, include_contended)
    if not include_contended:
        stored = read_stored(run.path)
        if stored is not None and stored.inputs == inputs:
            return stored
    doc = compute(run, include_contended, inputs)
    if save and not include_contended:
        store(run.path, doc)
    return doc


def refresh(run: RunData) -> AnalysisDoc:
    """Compute (if the stored one is not current) and store the default analysis of a run on disk."""
    return load(run, save=True)


def refresh_folder(run_dir: Path) -> AnalysisDoc:
    """`refresh` the run folder at `run_dir` (e.g. a merge's, before it is renamed into place)."""
    return refresh(load_run(run_dir))


def refresh_all(runs: Iterable[RunData]) -> None:
    """`refresh` every run (each folder once) read from disk, before a report or a comparison reads them."""
    seen: set[Path] = set()
    for run in runs:
        key = run.path.resolve()
        if key not in seen:
            seen.add(key)
            refresh(run)
