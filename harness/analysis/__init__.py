"""Statistics over cell records: the only package that imports pandas (and scipy).

Modules, one concept each: `frame` (records -> frames), `estimators` (execution-level bootstrap and tests,
numpy/scipy only), `cells` (per-cell table), `verdicts` (equivalence margin and wording), `comparisons`
(pairs, baseline, regressions), `history` (trends over runs), `probes` (calibration drift), `document` (the
stored analysis document's models), `tables` (an analysis as that document, and back into tables), `stored`
(`<run>/analysis.json`: read when current, else recomputed and stored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.analysis.cells import (
    CV_WARN,
    MIN_REPEATS,
    MIN_SAMPLES,
    MOD_Z_OUTLIER,
    CellTable,
    cell_table,
    use_peak,
)
from harness.analysis.comparisons import (
    ACC_TOLERANCE,
    LOSS_REL_TOLERANCE,
    BaselineChoice,
    choose_baseline,
    compare_cells_across,
    compare_pairs,
    compare_to_baseline,
    geometric_mean_ratios,
    image_order,
    reclassify,
    regressed,
)
from harness.analysis.document import TimelineSeries
from harness.analysis.estimators import ALPHA, BOOTSTRAP_RESAMPLES, CONFIDENCE, bootstrap_medians
from harness.analysis.frame import PHASES, params_key, params_label, records_frame, samples_frame
from harness.analysis.history import (
    HISTORY_THRESHOLD_PCT,
    history_regressions,
    history_trends,
    payload_changed,
)
from harness.analysis.probes import DRIFT_WARN_PCT, Drift, HostChange, host_change, probe_drift, widen
from harness.analysis.tables import (
    AnalysisTables,
    analysis_document,
    cell_table_of,
    drift_of,
    tables_of,
)
from harness.analysis.timeline import timeline
from harness.analysis.verdicts import DEFAULT_MARGIN_PCT, KINDS, TIMES
from harness.results.store import RunData

__all__ = [
    "ACC_TOLERANCE",
    "ALPHA",
    "BOOTSTRAP_RESAMPLES",
    "CONFIDENCE",
    "CV_WARN",
    "DEFAULT_MARGIN_PCT",
    "DRIFT_WARN_PCT",
    "HISTORY_THRESHOLD_PCT",
    "KINDS",
    "LOSS_REL_TOLERANCE",
    "MIN_REPEATS",
    "MIN_SAMPLES",
    "PHASES",
    "TIMES",
    "AnalysisTables",
    "BaselineChoice",
    "CellTable",
    "HostChange",
    "RunAnalysis",
    "analyse_run",
    "analysis_document",
    "bootstrap_medians",
    "cell_table",
    "cell_table_of",
    "choose_baseline",
    "compare_cells_across",
    "compare_pairs",
    "compare_to_baseline",
    "contended_executions",
    "definitions",
    "drift_of",
    "geometric_mean_ratios",
    "history_regressions",
    "history_trends",
    "host_change",
    "image_order",
    "params_key",
    "params_label",
    "payload_changed",
    "probe_drift",
    "problem_cells",
    "reclassify",
    "records_frame",
    "regressed",
    "samples_frame",
    "tables_of",
    "widen",
]

FIT_TAIL_WARN = 0.03


def definitions(margin_pct: float = DEFAULT_MARGIN_PCT) -> dict[str, str]:
    """The methods, as printed in the report."""
    return {
        "unit": "the unit of replication is an execution: one fresh process in a fresh container; "
        "windows inside one execution share its JIT, allocator, thread placement and host state and are "
        "never treated as independent",
        "sample": "one steady-state window: mean step time over window_steps steps after the warm-up",
        "step": "step time of a cell = mean over its executions of each execution's median window",
        "ci": f"{CONFIDENCE:.0%} CI by a two-level bootstrap ({BOOTSTRAP_RESAMPLES} seeded resamples: "
        "executions with replacement, then windows within each), taken at Hesterberg's expanded percentile "
        "level so that few executions give honestly wide intervals",
        "ratio": "B step time / A step time (> 1: B slower); "
        "CI from independent two-level bootstraps of both",
        "significance": "Welch t-test on the log of per-execution medians (p is shown; verdicts use the CI)",
        "margin": f"practical-equivalence margin \u00b1{margin_pct:g}%: 'faster/slower' only when "
        f"the whole CI lies beyond it, 'same within \u00b1{margin_pct:g}%' when the whole CI lies inside it, "
        "'inconclusive' otherwise",
        "contended": "an execution during which other processes used more than the quiet-host threshold of "
        "the cores (or steal exceeded its threshold) is contended: it is re-run up to a bound, listed, and "
        "excluded from every statistic unless --include-contended",
        "noise": f"executions or windows with CV >= {CV_WARN:.0%}, outlier windows with modified Z-score > "
        f"{MOD_Z_OUTLIER}, fewer than {MIN_REPEATS} executions or {MIN_SAMPLES} windows",
        "flops": "achieved FLOP/s = flops_per_sample_train x batch_size / step time",
        "rate": "throughput = batch_size / step time in samples/s; for call_overhead, whose step is one "
        "call, 1 / time per call in calls/s",
        "overhead": "step time - (flops_per_sample_train x batch_size) / peak FLOP/s, clipped at 0; the peak "
        "is the calibration probe's float32 matmul rate when the run has probes, else the best cell on the "
        "same device in this run: an estimate of per-step time not spent on arithmetic",
        "drift": f"the calibration probe (fixed float32 matmul + single-thread loop, in the baseline image, "
        f"without the run's CPU quota) runs before the first round, between rounds and at the end; a matmul "
        f"rate more than {DRIFT_WARN_PCT:g}% away from the first probe's flags its round (the loop is shown, "
        "not used: its own repeatability is too loose); when two runs' median matmul rates differ by more "
        f"than {DRIFT_WARN_PCT:g}%, or one probe swung more than that from its own run's median, harness "
        "compare widens every ratio CI by the larger change before a verdict",
        "fit": f"fit_total is the wall time of model.fit (what the seed article timed); fit_tail is the time "
        f"from the end of the last epoch to fit returning, flagged above {FIT_TAIL_WARN:.0%} of fit_total",
        "quality": f"quality parity fails when |final accuracy - baseline| > {ACC_TOLERANCE} or "
        f"|final loss - baseline| > {LOSS_REL_TOLERANCE:.0%} of the baseline loss",
        "history": f"regression: the lower bound of the step-time ratio CI against the previous run of the "
        f"same cell is more than {HISTORY_THRESHOLD_PCT:g}% slower",
    }


def problem_cells(rec: pd.DataFrame) -> pd.DataFrame:
    """Non-ok records grouped per (cell, status, reason): repeats affected and the last log tail."""
    bad = rec[rec["status"] != "ok"].copy()
    bad["params_label"] = [params_label(p) for p in bad["params"]]
    if bad.empty:
        return pd.DataFrame(
            columns=["cell_id", "image", "status", "reason", "repeats", "log_tail", "exit_code"]
        )
    bad["reason"] = bad["reason"].fillna("(no reason recorded)").astype(str)
    g = bad.sort_values(["cell_id", "repeat"]).groupby(["cell_id", "status", "reason"], sort=True)
    return g.agg(
        image=("image", "first"),
        params_label=("params_label", "first"),
        declared_tf=("declared_tf", "first"),
        repeats=("repeat", lambda s: ", ".join(str(int(x)) for x in s)),
        log_tail=("log_tail", "last"),
        exit_code=("exit_code", "last"),
    ).reset_index()


def contended_executions(rec: pd.DataFrame) -> pd.DataFrame:
    """Every contended execution (re-run or not), with the figures that made it contended."""
    cols = [
        "cell_id",
        "repeat",
        "attempt",
        "rerun",
        "contention_reasons",
        "tel_others_cores_mean",
        "tel_others_cores_max",
        "tel_steal_pct",
    ]
    return (
        rec.loc[rec["contended"], cols].sort_values(["cell_id", "repeat", "attempt"]).reset_index(drop=True)
    )


@dataclass
class RunAnalysis:
    run: RunData
    records: pd.DataFrame
    cells: CellTable
    baseline: BaselineChoice
    comparisons: pd.DataFrame
    geomeans: pd.DataFrame
    problems: pd.DataFrame
    contended: pd.DataFrame
    drift: Drift
    margin_pct: float
    include_contended: bool
    images: list[str] = field(default_factory=list)
    #: step time and memory over TF releases (`harness.analysis.timeline`)
    timeline: list[TimelineSeries] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def payload_sha256(self) -> str | None:
        """The payload the run's executions ran (manifest); None when the run does not say."""
        value = self.run.manifest.get("payload_sha256") if isinstance(self.run.manifest, dict) else None
        return value if isinstance(value, str) and value else None


def _margin(manifest: dict[str, Any]) -> float:
    value = (manifest.get("settings") or {}).get("margin_pct") if isinstance(manifest, dict) else None
    return float(value) if isinstance(value, int | float) and value > 0 else DEFAULT_MARGIN_PCT


def analyse_run(
    run: RunData, seed: int = 0, margin_pct: float | None = None, include_contended: bool = False
) -> RunAnalysis:
    margin = margin_pct if margin_pct is not None else _margin(run.manifest)
    rec = records_frame(run.records)
    cells = cell_table(rec, seed, include_contended, run=run.run_id)
    drift = probe_drift(run.probes)
    if drift.peak_flops:
        use_peak(cells.stats, drift.peak_flops)
    baseline = choose_baseline(run.manifest, cells.stats)
    comparisons = compare_to_baseline(cells, baseline.used, margin)
    return RunAnalysis(
        run=run,
        records=rec,
        cells=cells,
        baseline=baseline,
        comparisons=comparisons,
        geomeans=geometric_mean_ratios(comparisons),
        problems=problem_cells(rec),
        contended=contended_executions(rec),
        drift=drift,
        margin_pct=margin,
        include_contended=include_contended,
        images=image_order(run.manifest, cells.stats),
        timeline=timeline(cells, margin),
    )
