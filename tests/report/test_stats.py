"""Statistics that can fail: known data, known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness import stats


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


def test_median_iqr_cv_known_values() -> None:
    t = _table({"a/x": [[1.0, 2.0, 3.0], [4.0, 5.0]], "a/y": [[10.0, 10.0, 10.0]]})
    row = t.stats.loc["a/x"]
    assert row["median_s"] == 3.0
    assert row["mean_s"] == 3.0
    assert row["iqr_s"] == pytest.approx(2.0)
    assert row["cv"] == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1) / 3)
    assert row["n_samples"] == 5 and row["n_repeats_measured"] == 2
    assert row["throughput_median"] == pytest.approx(32 / 3.0)
    assert t.stats.loc["a/y", "cv"] == 0.0


def test_bootstrap_ci_contains_truth_and_is_deterministic() -> None:
    rng = np.random.default_rng(42)
    hits = 0
    for _ in range(40):
        sample = rng.normal(5.0, 1.0, 60)  # true median 5.0
        med, lo, hi = stats.bootstrap_median_ci(sample, seed=1)
        assert lo <= med <= hi
        hits += lo <= 5.0 <= hi
    assert hits >= 33  # ~95% nominal coverage; 33/40 leaves room for percentile-bootstrap undercoverage
    sample = rng.normal(5.0, 1.0, 30)
    assert stats.bootstrap_median_ci(sample, seed=3) == stats.bootstrap_median_ci(sample, seed=3)


def test_fast_bootstrap_equals_naive_bootstrap() -> None:
    rng = np.random.default_rng(0)
    groups = [rng.normal(1, 0.1, n) for n in (5, 6, 6, 11)]
    fast = stats.bootstrap_medians(groups, seed=9, n_boot=200)
    check = np.random.default_rng(9)
    for n in (5, 6, 11):  # same draw order as the implementation: sizes ascending
        idx = check.integers(0, n, size=(200, n))
        for i, g in enumerate(groups):
            if len(g) == n:
                # the fast path resamples the sorted group: same indices, same medians as materialising
                np.testing.assert_allclose(fast[i], np.median(np.sort(g)[idx], axis=1))


def test_mann_whitney_detects_2x_shift_but_not_identical() -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(1.0, 0.05, (3, 8))
    t = _table(
        {
            "a/c": base.tolist(),
            "b/c": (base * 2 * rng.normal(1, 0.01, base.shape)).tolist(),
            "c/c": rng.normal(1.0, 0.05, (3, 8)).tolist(),
        }
    )
    comp = stats.compare_to_baseline(t, "a")
    by = comp.set_index("b_image")
    assert by.loc["b", "p"] < 0.001 and bool(by.loc["b", "significant"])
    assert by.loc["b", "ratio"] == pytest.approx(2.0, rel=0.05)
    assert by.loc["b", "ratio_lo"] > 1.8 and by.loc["b", "ratio_hi"] < 2.2
    assert by.loc["b", "verdict"].startswith(f"b is {by.loc['b', 'ratio']:.2f}\u00d7 [")
    assert "slower than a (step time, p<0.001)" in by.loc["b", "verdict"]
    assert by.loc["c", "p"] > 0.05 and not bool(by.loc["c", "significant"])
    assert by.loc["c", "verdict"].startswith("no significant difference")


def test_verdict_wording_faster() -> None:
    text = stats.verdict("new", "old", 0.5, 0.45, 0.55, 0.002, True)
    assert text == "new is 2.00\u00d7 [1.82, 2.22] faster than old (step time, p=0.002)"


def test_noise_warning_fires_at_cv_20_not_2() -> None:
    rng = np.random.default_rng(1)

    def with_cv(cv: float) -> list[list[float]]:
        x = rng.normal(0, 1, 30)
        x = (x - x.mean()) / x.std(ddof=1)
        return (1.0 + cv * x).reshape(3, 10).tolist()

    t = _table({"a/noisy": with_cv(0.20), "a/quiet": with_cv(0.02)})
    assert t.stats.loc["a/noisy", "cv"] == pytest.approx(0.20)
    assert "CV 20%" in t.stats.loc["a/noisy", "warnings"]
    assert "CV" not in t.stats.loc["a/quiet", "warnings"]


def test_outlier_and_too_few_samples_warnings() -> None:
    t = _table({"a/out": [[1.0, 1.01, 0.99, 1.0, 5.0]] * 3, "a/few": [[1.0, 1.0]]})
    assert "outlier" in t.stats.loc["a/out", "warnings"]
    assert "too few samples" in t.stats.loc["a/few", "warnings"]
    assert "too few samples" not in t.stats.loc["a/out", "warnings"]


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


def test_history_regression_needs_threshold_and_disjoint_ci() -> None:
    trends = pd.DataFrame(
        {
            "run_id": ["r1", "r2", "r1", "r2", "r1", "r2"],
            "cell_id": ["a", "a", "b", "b", "c", "c"],
            "median_s": [1.0, 1.10, 1.0, 1.10, 1.0, 1.02],
            "ci_lo_s": [0.99, 1.09, 0.9, 1.0, 0.99, 1.015],
            "ci_hi_s": [1.01, 1.11, 1.1, 1.2, 1.01, 1.025],
        }
    )
    regs = stats.history_regressions(trends, "r2").set_index("cell_id")
    assert regs.loc["a", "status"] == "regression"
    assert regs.loc["b", "status"] == "unchanged"  # CIs overlap
    assert regs.loc["c", "status"] == "unchanged"  # below 5%


def test_overhead_and_flops_defined(current_run) -> None:
    st = stats.analyse_run(current_run).cells.stats
    st = st[st["measured"]]
    assert (st["overhead_s"] >= 0).all() and (st["overhead_s"] <= st["median_s"]).all()
    assert (st["achieved_flops"] > 0).all()
    assert st["overhead_s"].min() == 0.0  # the most efficient cell defines the attainable rate


def test_percentile_ci_is_bit_identical_to_numpy_percentile() -> None:
    """percentile_ci sorts rows itself (fast); it must give exactly np.percentile's linear interpolation."""
    rng = np.random.default_rng(5)
    tail = (1 - stats.CONFIDENCE) / 2 * 100
    for shape in [(6, 1000), (3, 1), (4, 2), (5, 3), (2, 40), (50, 200), (3, 4, 11)]:
        boot = rng.lognormal(size=shape)
        if len(shape) == 2 and shape[0] > 2:
            boot[1, 0] = np.nan  # rows holding a NaN give NaN, like numpy
        lo, hi = stats.percentile_ci(boot)
        with np.errstate(all="ignore"):
            want_lo, want_hi = np.percentile(boot, [tail, 100 - tail], axis=-1)
        assert lo.tobytes() == np.asarray(want_lo).tobytes()
        assert hi.tobytes() == np.asarray(want_hi).tobytes()


def test_ratio_bootstrap_pairs_rotated_resamples() -> None:
    """compare_pairs divides B's resample j by A's resample (j + offset) mod n_boot, offset per pair."""
    t = _table(
        {
            "a/x": [[1.0, 1.1, 0.9, 1.05], [1.0, 1.2]],
            "b/x": [[2.0, 2.1, 1.9, 2.2], [2.05, 1.95]],
            "c/x": [[1.5, 1.4, 1.6], [1.55, 1.45, 1.5]],
        }
    )
    pairs = pd.DataFrame({"a_cell": ["a/x", "a/x"], "b_cell": ["b/x", "c/x"]})
    out = stats.compare_pairs(t, t, pairs, seed=4)
    n_boot = stats.BOOTSTRAP_RESAMPLES
    offset = np.random.default_rng(5).integers(1, n_boot, size=(2, 1))
    boot_a = np.stack([t.boot["a/x"], t.boot["a/x"]])
    boot_b = np.stack([t.boot["b/x"], t.boot["c/x"]])
    shifted = (np.arange(n_boot)[None, :] + offset) % n_boot
    lo, hi = stats.percentile_ci(boot_b / np.take_along_axis(boot_a, shifted, axis=1))
    assert out["ratio_lo"].to_numpy().tobytes() == lo.tobytes()
    assert out["ratio_hi"].to_numpy().tobytes() == hi.tobytes()


def test_samples_frame_skips_bad_samples_and_sorts_by_cell() -> None:
    recs = _records({"b/x": [[1.0, float("nan"), 2.0]], "a/x": [[3.0, -1.0], [4.0]]})
    recs[0]["payload"]["steps"]["step_time_s"].append("junk")
    recs.append({**recs[1], "status": "failed", "repeat": 7})
    out = stats.samples_frame(stats.records_frame(recs))
    assert out["cell_id"].tolist() == ["a/x", "a/x", "b/x", "b/x"]
    assert out["repeat"].tolist() == [0, 1, 0, 0]
    assert out["step_s"].tolist() == [3.0, 4.0, 1.0, 2.0]
