"""Statistics that can fail: known data, known answers."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness import analysis as stats
from harness.analysis import verdicts
from harness.analysis.estimators import bootstrap_medians, expanded_confidence, hierarchical_means
from tests.report.probes import probe_records


def _records(cells: dict[str, list[list[float]]], image_of=lambda c: c.split("/")[0]) -> list[dict]:
    recs = []
    for cell_id, repeats in cells.items():
        for rep, samples in enumerate(repeats):
            recs.append(
                {
                    "run_id": "r",
                    "cell_id": cell_id,
                    "repeat": rep,
                    "status": "ok",
                    "cell": {
                        "image": image_of(cell_id),
                        "device": "cpu",
                        "workload": "mlp_fit",
                        "params": {"batch_size": 32},
                        "declared": {"tf": "2.15"},
                    },
                    "payload": {
                        "api_style": "keras-fit",
                        "runtime": {"tf_version": "2.15.1"},
                        "spec": {"batch_size": 32},
                        "steps": {"step_time_s": samples},
                        "quality": {"final_loss": 0.3, "final_accuracy": 0.9},
                        "memory": {"host_peak_rss_bytes": 100, "gpu_peak_bytes": None},
                        "model": {"flops_per_sample_train": 1000},
                    },
                }
            )
    return recs


def _table(cells: dict[str, list[list[float]]]) -> stats.CellTable:
    return stats.cell_table(stats.records_frame(_records(cells)))


def test_execution_level_known_values() -> None:
    t = _table({"a/x": [[1.0, 2.0, 3.0], [4.0, 5.0]], "a/y": [[10.0, 10.0, 10.0]]})
    row = t.stats.loc["a/x"]
    # step time = mean over executions of each execution's median window: (2.0 + 4.5) / 2
    assert row["step_s"] == pytest.approx(3.25)
    assert row["n_exec"] == 2 and row["n_used"] == 2
    assert row["exec_cv"] == pytest.approx(np.std([2.0, 4.5], ddof=1) / 3.25)
    # descriptive statistics over all windows stay available
    assert row["median_s"] == 3.0 and row["iqr_s"] == pytest.approx(2.0)
    assert row["throughput"] == pytest.approx(32 / 3.25)
    np.testing.assert_allclose(t.executions["a/x"], [2.0, 4.5])
    # one execution: a point estimate but no interval
    assert t.stats.loc["a/y", "step_s"] == 10.0
    assert np.isnan(t.stats.loc["a/y", "ci_lo_s"]) and np.isnan(t.stats.loc["a/y", "ci_hi_s"])


def test_a_cells_interval_depends_on_its_own_executions_only() -> None:
    """The same executions give the same CI whether the cell is analysed alone, beside other cells (a
    shard or a merge), or beside cells with other window counts."""
    rng = np.random.default_rng(3)
    mine = {"a/x": [list(1 + 0.1 * rng.standard_normal(5 + i % 3)) for i in range(12)]}
    alone = _table(mine).stats.loc["a/x", ["ci_lo_s", "ci_hi_s"]]
    others = {"a/w": [[2.0, 2.1], [2.2, 2.3, 2.1]], "b/z": [[3.0, 3.1, 3.2, 3.3], [3.1, 3.0, 3.3, 3.2]]}
    crowd = _table({**others, **mine}).stats.loc["a/x", ["ci_lo_s", "ci_hi_s"]]
    assert list(alone) == list(crowd) and np.all(np.isfinite(alone))


def test_two_runs_of_the_same_data_draw_independent_bootstraps(current_run) -> None:
    """A cross-run ratio CI divides the two runs' bootstraps element by element, which is only right when
    they are independent: the same cell with the same executions in another run draws other resamples
    (and the same run draws the same ones again: deterministic)."""
    other = copy.deepcopy(current_run)
    other.manifest["run_id"] = "20261127T000000Z-other"
    a, again, b = (stats.analyse_run(r).cells for r in (current_run, current_run, other))
    cell = "tf2.15-py3.11-cpu/mlp_fit-tfdata/bs32"
    np.testing.assert_array_equal(a.boot[cell], again.boot[cell])
    assert np.corrcoef(a.boot[cell], b.boot[cell])[0, 1] < 0.2


def test_fast_bootstrap_equals_naive_bootstrap() -> None:
    rng = np.random.default_rng(0)
    groups = [rng.normal(1, 0.1, n) for n in (5, 6, 6, 11)]
    fast = stats.bootstrap_medians(groups, seed=9, n_boot=200)
    check = np.random.default_rng(9)
    for n in (5, 6, 11):  # same draw order as the implementation: sizes ascending
        idx = check.integers(0, n, size=(200, n))
        for i, g in enumerate(groups):
            if len(g) == n:
                np.testing.assert_allclose(fast[i], np.median(np.sort(g)[idx], axis=1))


def test_hierarchical_resamples_draw_whole_executions() -> None:
    """Each resample is a mean over drawn executions: with windows constant inside an execution, every
    resampled value is a mean of k of the execution values (with replacement), nothing in between."""
    execs = [np.full(7, v) for v in (1.0, 2.0, 4.0)]
    boot = hierarchical_means([[0, 1, 2]], bootstrap_medians(execs, seed=1, n_boot=500), seed=2)[0]
    sums = {round(x * 3, 9) for x in boot}
    possible = {float(a + b + c) for a in (1, 2, 4) for b in (1, 2, 4) for c in (1, 2, 4)}
    assert sums <= possible and len(sums) > 5


def test_expanded_level_widens_small_samples() -> None:
    assert np.isnan(expanded_confidence(1))
    assert expanded_confidence(3) > expanded_confidence(5) > expanded_confidence(30) > 0.95
    assert expanded_confidence(1000) == pytest.approx(0.95, abs=0.001)


def _simulated_cell(rng: np.random.Generator, k: int, n_win: int, drift: float) -> list[list[float]]:
    """k executions of n_win windows: per-execution level (between-execution drift), AR(1) windows."""
    out = []
    for _ in range(k):
        level = 0.01 * np.exp(rng.normal(0, drift))
        x, windows = rng.normal(0, 0.03), []
        for _ in range(n_win):
            x = 0.8 * x + rng.normal(0, 0.03 * np.sqrt(1 - 0.8**2))
            windows.append(float(level * np.exp(x)))
        out.append(windows)
    return out


def test_coverage_of_aa_comparisons_with_correlated_windows() -> None:
    """200 simulated A/A comparisons (AR(1) noise inside executions, drift between them): the 95% CI of the
    ratio covers the true ratio 1 in >= 90% of them and false verdicts stay <= 10%; the pooled-window
    Mann-Whitney test (the method this replaced) calls most of them different."""
    from scipy import stats as sps

    rng = np.random.default_rng(2026)
    covered = false_verdicts = pooled_false = 0
    n = 200
    for _ in range(n):
        a = _simulated_cell(rng, 4, 20, 0.03)
        b = _simulated_cell(rng, 4, 20, 0.03)
        t = _table({"a/x": a, "b/x": b})
        comp = stats.compare_pairs(t, t, pd.DataFrame({"a_cell": ["a/x"], "b_cell": ["b/x"]})).iloc[0]
        covered += comp["ratio_lo"] <= 1.0 <= comp["ratio_hi"]
        false_verdicts += comp["kind"] in ("slower", "faster")
        pooled = sps.mannwhitneyu(np.concatenate(b), np.concatenate(a)).pvalue
        pooled_false += pooled < 0.05
    assert covered / n >= 0.90
    assert false_verdicts / n <= 0.10
    assert pooled_false / n > 0.30  # the pooled method fails on the same data


def test_two_fold_shift_is_slower_and_aa_is_never_a_difference() -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(1.0, 0.02, (4, 8))
    t = _table(
        {
            "a/c": base.tolist(),
            "b/c": (base * 2 * rng.normal(1, 0.005, base.shape)).tolist(),
            "c/c": (base * rng.normal(1, 0.005, base.shape)).tolist(),
        }
    )
    by = stats.compare_to_baseline(t, "a").set_index("b_image")
    assert by.loc["b", "kind"] == "slower" and by.loc["b", "p"] < 0.001
    assert by.loc["b", "ratio"] == pytest.approx(2.0, rel=0.02)
    assert by.loc["b", "ratio_lo"] > 1.9 and by.loc["b", "ratio_hi"] < 2.1
    assert by.loc["b", "verdict"].startswith(f"b is {by.loc['b', 'ratio']:.2f}\u00d7 [")
    assert by.loc["c", "kind"] in ("same", "inconclusive")


@pytest.mark.parametrize(
    ("ratio", "lo", "hi", "kind"),
    [
        (1.20, 1.10, 1.30, "slower"),
        (0.80, 0.75, 0.85, "faster"),
        (1.00, 0.99, 1.01, "same"),
        (1.02, 0.985, 1.029, "same"),
        (1.05, 1.01, 1.09, "inconclusive"),  # above 1, but not beyond the margin with confidence
        (1.00, 0.90, 1.10, "inconclusive"),
        (0.96, 0.95, 0.99, "inconclusive"),
        (1.04, 1.031, 1.05, "slower"),
        (float("nan"), float("nan"), float("nan"), "not comparable"),
        (1.0, float("nan"), float("nan"), "not comparable"),
    ],
)
def test_verdict_kind_and_wording_agree_with_numbers(ratio, lo, hi, kind) -> None:
    assert verdicts.classify(ratio, lo, hi, 3.0) == kind
    text = verdicts.wording("new", "old", ratio, lo, hi, 3.0)
    if kind == "slower":
        assert text == f"new is {ratio:.2f}\u00d7 [{lo:.2f}, {hi:.2f}] slower than old " + (
            "(step time; the whole 95% CI is beyond the \u00b13% margin)"
        )
    elif kind == "faster":
        assert text.startswith(f"new is {1 / ratio:.2f}\u00d7 [{1 / hi:.2f}, {1 / lo:.2f}] faster than old")
    elif kind == "same":
        assert text.startswith("new and old: same within \u00b13%") and f"[{lo:.3f}, {hi:.3f}]" in text
    elif kind == "inconclusive":
        assert text.startswith("inconclusive: new vs old") and f"[{lo:.3f}, {hi:.3f}]" in text
    else:
        assert "not comparable" in text
    for word in ("slower", "faster", "same", "inconclusive"):
        if word != kind:
            assert f" {word} " not in f" {text} ".replace("faster/slower", "")


def test_regression_gate_uses_the_lower_bound_only() -> None:
    assert verdicts.regression(1.051, 5.0)
    assert not verdicts.regression(1.049, 5.0)
    assert not verdicts.regression(float("nan"), 5.0)


def test_noise_warning_fires_on_execution_spread() -> None:
    t = _table({"a/noisy": [[1.0] * 6, [1.3] * 6, [0.8] * 6], "a/quiet": [[1.0] * 6, [1.01] * 6, [0.99] * 6]})
    assert "executions vary" in t.stats.loc["a/noisy", "warnings"]
    assert "vary" not in t.stats.loc["a/quiet", "warnings"]


def test_outlier_and_too_few_executions_warnings() -> None:
    t = _table({"a/out": [[1.0, 1.01, 0.99, 1.0, 5.0]] * 3, "a/few": [[1.0, 1.0]]})
    assert "outlier" in t.stats.loc["a/out", "warnings"]
    assert "too few executions (1)" in t.stats.loc["a/few", "warnings"]
    assert "too few" not in t.stats.loc["a/out", "warnings"]


def test_contended_executions_are_excluded_unless_asked() -> None:
    recs = _records({"a/x": [[1.0] * 5, [1.0] * 5, [3.0] * 5]})
    recs[2]["contention"] = {"contended": True, "reasons": ["other processes used 1.2 cores"]}
    t = stats.cell_table(stats.records_frame(recs))
    assert t.stats.loc["a/x", "step_s"] == 1.0
    assert t.stats.loc["a/x", "n_used"] == 2 and t.stats.loc["a/x", "n_contended"] == 1
    assert "1 contended execution(s) excluded" in t.stats.loc["a/x", "warnings"]
    both = stats.cell_table(stats.records_frame(recs), include_contended=True)
    assert both.stats.loc["a/x", "step_s"] == pytest.approx(5 / 3)
    listed = stats.contended_executions(stats.records_frame(recs))
    assert listed["repeat"].tolist() == [2] and "1.2 cores" in listed["contention_reasons"][0]


def test_baseline_fallback_is_stated(current_run) -> None:
    ana = stats.analyse_run(current_run)
    assert ana.baseline.requested == "tf1.15-gpu"
    assert ana.baseline.used == "tf2.15-py3.11"
    assert ana.baseline.note and "tf1.15-gpu" in ana.baseline.note and "instead" in ana.baseline.note


def test_baseline_default_is_tf1_entry(fresh_current) -> None:
    fresh_current.manifest["baseline"] = None
    rec = stats.records_frame(fresh_current.records)
    choice = stats.choose_baseline(fresh_current.manifest, stats.cell_table(rec).stats)
    assert choice.requested == "tf1.15-gpu"


def test_gpu_memory_null_stays_missing_and_quality_flag(current_run) -> None:
    ana = stats.analyse_run(current_run)
    st = ana.cells.stats[ana.cells.stats["measured"]]
    assert st["gpu_peak_bytes"].isna().all()
    assert (st["host_peak_rss_bytes"] > 0).all()
    suspect = ana.comparisons[ana.comparisons["quality_suspect"]]
    assert list(suspect["b_cell"]) == ["tf2.21-py3.11-cpu/mlp_loop-eager/bs32"]


def test_labels_name_runtime_and_api_separately(current_run) -> None:
    st = stats.analyse_run(current_run).cells.stats
    graph = st.loc["tf2.15-py3.11-cpu/mlp_loop-graph/bs32", "label"]
    assert graph == "TF 2.15.1 · tf1-graph API"
    assert "1.15" not in graph
    assert st.loc["tf1.15-gpu-gpu/mlp_fit-numpy/bs32", "label"] == "TF 1.15.5 (declared; not run)"


def test_history_regression_uses_the_ci_lower_bound(current_run, earlier_run) -> None:
    earlier = stats.analyse_run(earlier_run)
    current = stats.analyse_run(current_run)
    slower = copy.deepcopy(current_run)
    slower.manifest["run_id"] = "20261127T000000Z-later"
    for rec in slower.records:
        if rec["status"] == "ok" and rec["cell_id"].startswith("tf2.21-py3.11-cpu/cnn_fit"):
            rec["payload"]["steps"]["step_time_s"] = [t * 1.5 for t in rec["payload"]["steps"]["step_time_s"]]
    later = stats.analyse_run(slower)
    regs = stats.history_regressions(later, [earlier, current]).set_index("cell_id")
    assert set(regs["prev_run_id"]) == {current_run.run_id}
    bad = regs[regs["status"] == "regression"]
    assert sorted(bad.index) == sorted(c for c in regs.index if c.startswith("tf2.21-py3.11-cpu/cnn_fit"))
    assert (bad["ratio_lo"] > 1.05).all()


def test_history_regression_widens_by_the_hosts_own_change(current_run) -> None:
    """The previous run's host was 40% faster by its probes: a 1.3x slowdown is the host's, not a regression;
    a 2x slowdown is still one. The same rule as harness compare."""
    prev = copy.deepcopy(current_run)
    prev.probes = probe_records([140.0, 141.0, 139.0])
    prev.manifest["run_id"] = "20261126T000000Z-prev"
    later = copy.deepcopy(current_run)
    later.probes = probe_records([100.0, 101.0, 99.0])
    later.manifest["run_id"] = "20261127T000000Z-later"
    factors = {"tf2.21-py3.11-cpu/cnn_fit": 2.0, "tf2.15-py3.11-cpu/cnn_fit": 1.3}
    for rec in later.records:
        f = next((v for k, v in factors.items() if rec["cell_id"].startswith(k)), None)
        if rec["status"] == "ok" and f:
            rec["payload"]["steps"]["step_time_s"] = [t * f for t in rec["payload"]["steps"]["step_time_s"]]
    regs = stats.history_regressions(stats.analyse_run(later), [stats.analyse_run(prev)]).set_index("cell_id")
    assert (regs["host_widened_pct"].round(1) == 28.6).all()  # 140 -> 100 is 28.6% slower
    status = {c: regs.loc[c, "status"] for c in regs.index}
    assert all(v == "regression" for c, v in status.items() if c.startswith("tf2.21-py3.11-cpu/cnn_fit"))
    assert all(v == "unchanged" for c, v in status.items() if c.startswith("tf2.15-py3.11-cpu/cnn_fit"))
    assert "regression" not in {v for c, v in status.items() if "cnn_fit" not in c}


def test_history_names_a_payload_change_instead_of_a_regression(current_run) -> None:
    prev = copy.deepcopy(current_run)
    prev.manifest["run_id"], prev.manifest["payload_sha256"] = "20261126T000000Z-prev", "a" * 64
    later = copy.deepcopy(current_run)
    later.manifest["run_id"], later.manifest["payload_sha256"] = "20261127T000000Z-later", "b" * 64
    for rec in later.records:
        if rec["status"] == "ok":
            rec["payload"]["steps"]["step_time_s"] = [t * 2 for t in rec["payload"]["steps"]["step_time_s"]]
    regs = stats.history_regressions(stats.analyse_run(later), [stats.analyse_run(prev)])
    assert len(regs) and set(regs["status"]) == {"payload changed"}
    later.manifest["payload_sha256"] = "a" * 64
    regs = stats.history_regressions(stats.analyse_run(later), [stats.analyse_run(prev)])
    # the same payload: a 2x slowdown is a regression wherever the CI can tell; tf2.21's numpy fit has a
    # stalled window in one execution of each run, and at 3 executions a side its CI spans [0.84, 4.8]
    status = dict(zip(regs["cell_id"], regs["status"], strict=True))
    assert status.pop("tf2.21-py3.11-cpu/mlp_fit-numpy/bs32") == "unchanged"
    assert set(status.values()) == {"regression"}


def test_history_follows_a_cell_only_through_runs_with_its_parameters(current_run) -> None:
    """A later run at another size (here: the cnn cells with epochs 1, twice as slow per step) is other
    work under the same cell ids: no regression, no trend point; its other cells still compare."""
    prev = copy.deepcopy(current_run)
    prev.manifest["run_id"] = "20261126T000000Z-prev"
    later = copy.deepcopy(current_run)
    later.manifest["run_id"] = "20261127T000000Z-later"
    for rec in later.records:
        if "cnn_fit" in rec["cell_id"]:
            rec["cell"]["params"] = {**rec["cell"]["params"], "epochs": 1}
            if rec["status"] == "ok":
                steps = rec["payload"]["steps"]
                steps["step_time_s"] = [t * 2 for t in steps["step_time_s"]]
    ana_prev, ana_later = stats.analyse_run(prev), stats.analyse_run(later)
    regs = stats.history_regressions(ana_later, [ana_prev])
    assert len(regs) and not any("cnn_fit" in c for c in regs["cell_id"])
    assert "regression" not in set(regs["status"])
    trends = stats.history_trends(ana_later, [ana_prev])
    cnn = trends[trends["cell_id"].str.contains("cnn_fit")]
    assert set(cnn["run_id"]) == {later.run_id}  # only its own point
    assert set(trends[~trends["cell_id"].str.contains("cnn_fit")]["run_id"]) == {prev.run_id, later.run_id}


def test_call_overhead_rate_is_calls_per_second() -> None:
    """A call_overhead step is one call of batch_size rows: its rate is 1 / time per call in calls/s (not
    rows/s); a training workload keeps batch_size / step time in samples/s. FLOP/s count rows either way."""
    recs = _records({"a/calls": [[0.5, 0.5, 0.5]] * 2, "a/fit": [[0.5, 0.5, 0.5]] * 2})
    for rec in recs:
        if rec["cell_id"] == "a/calls":
            rec["cell"]["workload"] = "call_overhead"
            rec["cell"]["params"] = rec["payload"]["spec"] = {"batch_size": 4}
    st = stats.cell_table(stats.records_frame(recs)).stats
    calls, fit = st.loc["a/calls"], st.loc["a/fit"]
    assert (calls["rate_unit"], calls["throughput"]) == ("calls/s", pytest.approx(2.0))
    assert (calls["throughput_ci_lo"], calls["throughput_ci_hi"]) == (pytest.approx(2.0), pytest.approx(2.0))
    assert (fit["rate_unit"], fit["throughput"]) == ("samples/s", pytest.approx(64.0))
    assert calls["achieved_flops"] == pytest.approx(1000 * 4 / 0.5)
    assert fit["achieved_flops"] == pytest.approx(1000 * 32 / 0.5)


def test_overhead_and_flops_defined(current_run, fresh_current) -> None:
    ana = stats.analyse_run(current_run)
    st = ana.cells.stats[ana.cells.stats["measured"]]
    assert (st["overhead_s"] >= 0).all() and (st["overhead_s"] <= st["step_s"]).all()
    assert (st["achieved_flops"] > 0).all()
    assert ana.drift.peak_flops and (st["peak_flops_ref"] == ana.drift.peak_flops).all()  # the probes' peak
    assert (st["overhead_s"] > 0).all()  # every cell achieves less than the measured peak
    fresh_current.probes = []
    st = stats.analyse_run(fresh_current).cells.stats
    st = st[st["measured"]]
    assert (st["overhead_s"] >= 0).all() and (st["overhead_s"] <= st["step_s"]).all()
    assert st["overhead_s"].min() == 0.0  # without probes the most efficient cell defines the rate


def test_probe_peak_and_drift_flags(fresh_current) -> None:
    def probe(i, label, gflops, mops):
        return {
            "kind": "tfmh.probe-record",
            "index": i,
            "label": label,
            "status": "ok",
            "result": {"matmul_gflops": gflops, "loop_mops": mops},
        }

    fresh_current.probes = [
        probe(0, "start", 100.0, 50.0),
        probe(1, "after round 1", 99.0, 49.5),
        probe(2, "after round 2", 60.0, 30.0),
    ]
    ana = stats.analyse_run(fresh_current)
    assert ana.drift.flagged_labels == ["after round 2"]
    assert ana.drift.peak_flops == pytest.approx(99e9)
    assert ana.drift.points[2].matmul_drift_pct == pytest.approx(-40.0)
    st = ana.cells.stats[ana.cells.stats["measured"]]
    assert (st["peak_flops_ref"] == 99e9).all()


def test_samples_frame_skips_bad_samples_and_sorts_by_cell() -> None:
    recs = _records({"b/x": [[1.0, float("nan"), 2.0]], "a/x": [[3.0, -1.0], [4.0]]})
    recs[0]["payload"]["steps"]["step_time_s"].append("junk")
    recs.append({**recs[1], "status": "failed", "repeat": 7})
    out = stats.samples_frame(stats.records_frame(recs))
    assert out["cell_id"].tolist() == ["a/x", "a/x", "b/x", "b/x"]
    assert out["repeat"].tolist() == [0, 1, 0, 0]
    assert out["execution"].tolist() == [1, 2, 0, 0]
    assert out["step_s"].tolist() == [3.0, 4.0, 1.0, 2.0]


@settings(max_examples=200, deadline=None)
@given(
    a=st.lists(st.floats(0.001, 10.0), min_size=2, max_size=12),
    b=st.lists(st.floats(0.001, 10.0), min_size=2, max_size=12),
)
def test_welch_p_is_scipys_welch_test_on_log_medians(a: list[float], b: list[float]) -> None:
    from scipy import stats as sps

    from harness.analysis.estimators import welch_log_p

    la, lb = np.log(a), np.log(b)
    assume(np.ptp(la) > 1e-9 or np.ptp(lb) > 1e-9)
    with warnings.catch_warnings():  # scipy's own precision note on nearly equal values
        warnings.simplefilter("ignore", RuntimeWarning)
        want = float(sps.ttest_ind(lb, la, equal_var=False).pvalue)
    assert welch_log_p(np.asarray(a), np.asarray(b)) == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_welch_p_without_any_spread() -> None:
    from harness.analysis.estimators import welch_log_p

    assert welch_log_p(np.array([1.0, 1.0, 1.0]), np.array([2.0, 2.0])) == 0.0  # certainly different
    assert welch_log_p(np.array([1.0, 1.0]), np.array([1.0, 1.0, 1.0])) == 1.0  # identical
    assert np.isnan(welch_log_p(np.array([1.0]), np.array([1.0, 2.0])))  # one execution: no test


def test_history_of_a_run_that_measured_nothing_is_empty(current_run) -> None:
    """A nightly run whose every cell failed still renders its history section (empty)."""
    failed = copy.deepcopy(current_run)
    failed.manifest["run_id"] = "20261127T000000Z-failed"
    for rec in failed.records:
        if rec["status"] == "ok":
            rec["status"], rec["payload"] = "failed", None
    ana = stats.analyse_run(failed)
    assert stats.history_trends(ana, [stats.analyse_run(current_run)]).empty
    assert stats.history_regressions(ana, [stats.analyse_run(current_run)]).empty
