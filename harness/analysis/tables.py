"""A `RunAnalysis` as the stored, typed analysis document (`harness.analysis.document`), and back into the
tables
that comparisons across runs and history need (no bootstrap is recomputed: each cell's series is stored)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.cells import CellTable
from harness.analysis.document import (
    AnalysisDoc,
    BaselineDoc,
    CellRow,
    ComparisonRow,
    ContendedRow,
    DriftDoc,
    ExecutionSeries,
    GeomeanRow,
    Inputs,
    ProbePointRow,
    ProblemRow,
)
from harness.analysis.probes import Drift, ProbePoint
from harness.analysis.publicfacts import assess_run

Doc = dict[str, Any]


def _rows(frame: pd.DataFrame) -> list[Doc]:
    records: list[Doc] = [] if frame is None or frame.empty else frame.to_dict("records")  # type: ignore[assignment]
    return records


def _statuses(records: pd.DataFrame) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    statuses: dict[str, set[str]] = {}
    reasons: dict[str, set[str]] = {}
    for cell, status, reason in zip(records["cell_id"], records["status"], records["reason"], strict=True):
        statuses.setdefault(str(cell), set()).add(str(status))
        if isinstance(reason, str) and reason:
            reasons.setdefault(str(cell), set()).add(reason)
    return (
        {k: sorted(v) for k, v in statuses.items()},
        {k: sorted(v) for k, v in reasons.items()},
    )


def _drift_doc(drift: Drift) -> DriftDoc:
    return DriftDoc(
        points=[ProbePointRow.model_validate(vars(p)) for p in drift.points],
        peak_flops=drift.peak_flops,
        flagged_labels=list(drift.flagged_labels),
        max_abs_drift_pct=drift.max_abs_drift_pct,
        n_failed=drift.n_failed,
    )


def analysis_document(ana: Any, inputs: Inputs, definitions: dict[str, str]) -> AnalysisDoc:
    """The document of a `stats.RunAnalysis` (typed as Any: the class lives in the package's __init__)."""
    rec: pd.DataFrame = ana.records
    statuses, reasons = _statuses(rec) if len(rec) else ({}, {})
    cells = [
        CellRow.model_validate(
            {**row, "statuses": statuses.get(row["cell_id"], []), "reasons": reasons.get(row["cell_id"], [])}
        )
        for row in _rows(ana.cells.stats.reset_index())
    ]
    counts = rec.groupby("status").size().to_dict() if len(rec) else {}
    series = {
        cell: ExecutionSeries(medians=meds.tolist(), bootstrap=ana.cells.boot[cell].tolist())
        for cell, meds in sorted(ana.cells.executions.items())
    }
    return AnalysisDoc(
        inputs=inputs,
        run_id=ana.run_id,
        payload_sha256=ana.payload_sha256,
        margin_pct=float(ana.margin_pct),
        include_contended=bool(ana.include_contended),
        images=list(ana.images),
        n_records=len(rec),
        status_counts={str(k): int(v) for k, v in sorted(counts.items())},
        baseline=BaselineDoc(
            requested=ana.baseline.requested, used=ana.baseline.used, note=ana.baseline.note
        ),
        cells=cells,
        comparisons=[ComparisonRow.model_validate(r) for r in _rows(ana.comparisons)],
        geomeans=[GeomeanRow.model_validate(r) for r in _rows(ana.geomeans)],
        problems=[ProblemRow.model_validate(r) for r in _rows(ana.problems)],
        contended=[ContendedRow.model_validate(r) for r in _rows(ana.contended)],
        drift=_drift_doc(ana.drift),
        definitions=definitions,
        series=series,
        public_record=assess_run(ana),
        timeline=list(ana.timeline),
    )


@dataclass
class AnalysisTables:
    """What comparisons across runs and history read from a stored analysis (see `history.HasCells`)."""

    doc: AnalysisDoc
    cells: CellTable
    drift: Drift

    @property
    def run_id(self) -> str:
        return self.doc.run_id

    @property
    def payload_sha256(self) -> str | None:
        return self.doc.payload_sha256

    @property
    def margin_pct(self) -> float:
        return self.doc.margin_pct

    @property
    def include_contended(self) -> bool:
        return self.doc.include_contended


def cell_table_of(doc: AnalysisDoc) -> CellTable:
    columns = [c for c in CellRow.model_fields if c != "cell_id"]
    stats = pd.DataFrame([c.model_dump() for c in doc.cells], columns=["cell_id", *columns]).set_index(
        "cell_id"
    )
    executions = {k: np.asarray(s.medians, dtype=float) for k, s in doc.series.items()}
    boot = {k: np.asarray(s.bootstrap, dtype=float) for k, s in doc.series.items()}
    return CellTable(stats=stats, executions=executions, boot=boot)


def drift_of(doc: AnalysisDoc) -> Drift:
    d = doc.drift
    points = [ProbePoint(**p.model_dump()) for p in d.points]
    return Drift(points, d.peak_flops, list(d.flagged_labels), d.max_abs_drift_pct, d.n_failed)


def tables_of(doc: AnalysisDoc) -> AnalysisTables:
    return AnalysisTables(doc=doc, cells=cell_table_of(doc), drift=drift_of(doc))
