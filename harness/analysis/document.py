"""The per-run analysis document (`<run>/analysis.json`, kind ``tfmh.analysis``): what the report, `harness
compare`, the terminal summary and the history read, computed once when a run or a merge finishes.

Plain typed values only (no DataFrames): per-cell rows, the comparisons against the baseline with their
verdicts, the calibration probe's drift, the definitions and margin used, the payload's sha256 and the inputs'
identity (`Inputs`), so a reader can tell a stored analysis that no longer matches its records. A number that
is missing (NaN) is JSON ``null`` on disk and NaN in memory. Each measured cell keeps its per-execution
medians and its bootstrap distribution (float64, base64), so comparisons across runs need no recomputation.
"""

from __future__ import annotations

import base64
import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

ANALYSIS_KIND = "tfmh.analysis"
#: bump when a field changes meaning or the statistics change: readers recompute older documents
#: (2: the public record and the timeline over TF releases)
ANALYSIS_VERSION = 3
ANALYSIS_FILE = "analysis.json"


def _nan_if_none(value: Any) -> Any:
    return math.nan if value is None else value


def _none_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _floats_in(value: Any) -> Any:
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value), dtype="<f8").astype(float).tolist()
    return value


def _floats_out(values: list[float]) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f8").tobytes()).decode("ascii")


#: a float; NaN (missing) is JSON null
Num = Annotated[float, BeforeValidator(_nan_if_none)]
#: a text that may be missing (pandas' NaN becomes None)
OptText = Annotated[str | None, BeforeValidator(_none_if_nan)]
#: an exact float64 series, stored as base64 of little-endian doubles
Floats = Annotated[
    list[float], BeforeValidator(_floats_in), PlainSerializer(_floats_out, when_used="json", return_type=str)
]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="null")


class CellRow(_Doc):
    """One cell: identity, execution-level speed (step time, CI, throughput), noise, phases, memory,
    telemetry, quality, and what happened to its records."""

    cell_id: str
    image: str
    device: str
    workload: str
    declared_tf: str
    params_key: str
    params_label: str
    params_short: str
    label: str
    image_tag: OptText = None
    image_id: OptText = None
    tf_version: OptText = None
    api_style: OptText = None
    gpu_peak_note: OptText = None
    contention_reasons: OptText = None
    #: the statuses of the cell's records (sorted) and their reasons, for the terminal summary
    statuses: list[str] = []
    reasons: list[str] = []
    n_records: int
    n_ok: int
    n_used: int
    n_contended: int
    n_rerun: int
    n_exec: int
    measured: bool
    batch_size: Num
    step_s: Num
    ci_lo_s: Num
    ci_hi_s: Num
    exec_cv: Num
    #: samples per second: batch_size / step_s (the one definition the summary and the report show); calls
    #: per second, 1 / step_s, for the per-call workloads (rate_unit says which)
    throughput: Num
    throughput_ci_lo: Num
    throughput_ci_hi: Num
    rate_unit: str = "samples/s"
    n_samples: Num
    median_s: Num
    mean_s: Num
    q1_s: Num
    q3_s: Num
    std_s: Num
    iqr_s: Num
    cv: Num
    n_outliers: Num
    warnings: str
    host_peak_rss_bytes: Num
    gpu_peak_bytes: Num
    container_peak_bytes: Num
    cpu_time_s: Num
    cpu_cores_mean: Num
    others_cores_mean: Num
    others_cores_max: Num
    steal_pct: Num
    throttled_s: Num
    cpu_per_step_s: Num
    final_loss: Num
    final_accuracy: Num
    flops_per_sample_train: Num
    achieved_flops: Num
    peak_flops_ref: Num
    overhead_s: Num
    overhead_frac: Num
    phase_interpreter: Num
    phase_import: Num
    phase_data: Num
    phase_build: Num
    phase_first_step: Num
    phase_fit_total: Num
    phase_fit_tail: Num
    phase_train_total: Num
    phase_eval: Num
    #: call_overhead only (absent from analyses written before it existed)
    phase_symbolic_build: Num = math.nan


class ComparisonRow(_Doc):
    """A measured cell (B) against the baseline cell (A) of equal device, workload and params."""

    a_cell: str
    b_cell: str
    a_image: str
    b_image: str
    workload: str
    params_label: str
    params_short: str
    ratio: Num
    ratio_lo: Num
    ratio_hi: Num
    p: Num
    half_width_pct: Num
    margin_pct: Num
    a_n_exec: int
    b_n_exec: int
    kind: str
    verdict: str
    direction: str
    significant: bool
    a_step_s: Num
    b_step_s: Num
    a_contended: int
    b_contended: int
    warnings: str
    a_final_accuracy: Num
    b_final_accuracy: Num
    d_accuracy: Num
    d_loss: Num
    quality_suspect: bool
    a_api_style: OptText = None
    b_api_style: OptText = None


class GeomeanRow(_Doc):
    b_image: str
    a_image: str
    geomean: Num
    n: int


class ProblemRow(_Doc):
    """Non-ok records of a cell with one status and reason."""

    cell_id: str
    status: str
    reason: str
    image: str
    params_label: str
    declared_tf: str
    repeats: str
    log_tail: str
    exit_code: Num


class ContendedRow(_Doc):
    cell_id: str
    repeat: int
    attempt: int
    rerun: bool
    contention_reasons: str
    tel_others_cores_mean: Num
    tel_others_cores_max: Num
    tel_steal_pct: Num


class ProbePointRow(_Doc):
    index: int
    label: str
    at: str
    matmul_gflops: Num
    loop_mops: Num
    matmul_drift_pct: Num
    loop_drift_pct: Num
    flagged: bool


class DriftDoc(_Doc):
    points: list[ProbePointRow] = []
    peak_flops: float | None = None
    flagged_labels: list[str] = []
    max_abs_drift_pct: float | None = None
    n_failed: int = 0


class BaselineDoc(_Doc):
    requested: str | None
    used: str | None
    note: str | None


class Inputs(_Doc):
    """What the analysis was computed from and by: a stored analysis is current only when all of it still
    matches (see `harness.analysis.stored`)."""

    #: sha256 of the canonical JSON of the manifest, the records and the probes, as read (upgraded)
    sha256: str
    n_records: int
    n_probes: int
    harness_version: str
    seed: int
    include_contended: bool


class ExecutionSeries(_Doc):
    """A measured cell's per-execution medians and its hierarchical bootstrap of the step time."""

    medians: Floats
    bootstrap: Floats


class RecordMeasurement(_Doc):
    """One pair of this run's cells that speaks to a public claim: their ratio, its CI and the verdict."""

    numerator_cell: str
    denominator_cell: str
    numerator_image: str
    denominator_image: str
    params_short: str
    ratio: Num
    ratio_lo: Num
    ratio_hi: Num
    n_numerator: int
    n_denominator: int
    #: same direction | opposite | no difference | inconclusive
    verdict: str
    #: where the reported ratio lies against the measured CI: inside | above | below | unknown
    magnitude: str
    sentence: str


class ClaimRow(_Doc):
    """A claim of the public record (as reported) and what this run measured about it."""

    id: str
    title: str
    sources: list[dict[str, str]]
    setup: str
    reported: str
    reported_ratio: float
    ratio_basis: str
    maintainers: str
    note: str
    metric: str
    numerator: str
    denominator: str
    #: the measurements' common verdict, "mixed", or "cannot speak to" (then `reason` says why)
    verdict: str
    reason: str | None = None
    measurements: list[RecordMeasurement] = []


class TimelinePoint(_Doc):
    """One image of a timeline series: its release, Keras major, step time (CI) and peak memory."""

    cell_id: str
    image: str
    tf: str
    tf_minor: str
    #: the Keras major version the release ships (docker/compat.yaml); None: not in the table
    keras: int | None = None
    step_s: Num
    ci_lo_s: Num
    ci_hi_s: Num
    n_exec: int
    container_peak_bytes: Num
    host_peak_rss_bytes: Num


class TimelineChange(_Doc):
    """One release to the next in a timeline series: B (later) / A (earlier) step time."""

    a_cell: str
    b_cell: str
    a_image: str
    b_image: str
    a_tf: str
    b_tf: str
    ratio: Num
    ratio_lo: Num
    ratio_hi: Num
    kind: str
    verdict: str
    a_n_exec: int
    b_n_exec: int
    keras_boundary: bool


class TimelineSeries(_Doc):
    """The cells of one (device, workload, params) over TF releases (oldest first)."""

    device: str
    workload: str
    params_key: str
    params_label: str
    params_short: str
    points: list[TimelinePoint]
    changes: list[TimelineChange]


class AnalysisDoc(_Doc):
    kind: Literal["tfmh.analysis"] = "tfmh.analysis"
    schema_version: int = ANALYSIS_VERSION
    inputs: Inputs
    run_id: str
    payload_sha256: str | None
    margin_pct: float
    include_contended: bool
    images: list[str]
    n_records: int
    status_counts: dict[str, int]
    baseline: BaselineDoc
    cells: list[CellRow]
    comparisons: list[ComparisonRow]
    geomeans: list[GeomeanRow]
    problems: list[ProblemRow]
    contended: list[ContendedRow]
    drift: DriftDoc
    definitions: dict[str, str]
    series: dict[str, ExecutionSeries]
    #: the public record's claims against this run's cells (schema_version 2)
    public_record: list[ClaimRow] = []
    #: step time and memory over TF releases (series spanning at least three releases)
    timeline: list[TimelineSeries] = []

    def cell(self, cell_id: str) -> CellRow | None:
        return next((c for c in self.cells if c.cell_id == cell_id), None)

    def to_json(self) -> str:
        return self.model_dump_json(indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> AnalysisDoc:
        return cls.model_validate_json(text)
