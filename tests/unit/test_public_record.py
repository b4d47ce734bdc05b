"""The public record against a run: the claims file, cell matching, and every verdict (same direction,
opposite, no difference, inconclusive, cannot speak to)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.analysis.estimators import bootstrap_means
from harness.analysis.publicclaims import Claim, load_claims, packaged_claims
from harness.analysis.publicrecord import (
    CANNOT,
    INCONCLUSIVE,
    NO_DIFFERENCE,
    OPPOSITE,
    SAME,
    CellFacts,
    assess,
    claim_verdict,
    magnitude,
    verdict,
)
from harness.errors import ConfigError

MARGIN = 3.0


def _claim(ratio: float = 10.0, pairing: str = "same_image", **sides: dict[str, object]) -> Claim:
    return Claim.model_validate(
        {
            "id": "t",
            "title": "t",
            "sources": [{"ref": "o/r#1", "url": "https://example.org/1"}],
            "setup": "s",
            "reported": "r",
            "ratio": ratio,
            "ratio_basis": "b",
            "compare": {
                "metric": "step",
                "pairing": pairing,
                "numerator": sides.get("num", {"workload": "call_overhead", "params": {"call": "predict"}}),
                "denominator": sides.get("den", {"workload": "call_overhead", "params": {"call": "call"}}),
            },
        }
    )


def _cell(
    cid: str, image: str, params: dict[str, object], values: list[float] | None, **kw: object
) -> CellFacts:
    arr = {"step": np.asarray(values, dtype=float)} if values else {}
    boot = {"step": bootstrap_means(arr["step"], 1)} if values else {}
    return CellFacts(
        cell_id=cid,
        image=image,
        device="cpu",
        workload=str(kw.get("workload", "call_overhead")),
        params=params,
        tf_minor=str(kw.get("tf", "2.21")),
        keras=kw.get("keras", 3),  # type: ignore[arg-type]
        values=arr,
        boot=boot,
    )


# ------------------------------------------------------------------------------------------ pure verdicts


@pytest.mark.parametrize(
    ("reported", "ratio", "lo", "hi", "want"),
    [
        (10.0, 5.0, 4.0, 6.0, SAME),  # slower, as reported (smaller, but the same direction)
        (10.0, 0.5, 0.4, 0.6, OPPOSITE),  # faster where the claim says slower
        (0.5, 2.0, 1.8, 2.2, OPPOSITE),
        (10.0, 1.0, 0.99, 1.01, NO_DIFFERENCE),  # the whole CI inside +-3%
        (10.0, 1.2, 0.9, 1.5, INCONCLUSIVE),  # the CI includes 1
        (10.0, 1.05, 1.02, 1.08, INCONCLUSIVE),  # beyond 1 but reaches into the margin
        (10.0, 2.0, math.nan, math.nan, INCONCLUSIVE),  # no CI
    ],
)
def test_verdict(reported: float, ratio: float, lo: float, hi: float, want: str) -> None:
    assert verdict(reported, ratio, lo, hi, MARGIN) == want


def test_magnitude_places_the_reported_figure_against_the_ci() -> None:
    assert magnitude(10.0, 4.0, 6.0) == "above"
    assert magnitude(10.0, 8.0, 12.0) == "inside"
    assert magnitude(2.0, 4.0, 6.0) == "below"
    assert magnitude(2.0, math.nan, math.nan) == "unknown"


def test_claim_verdict_is_common_mixed_or_cannot() -> None:
    assert claim_verdict([SAME, SAME]) == SAME
    assert claim_verdict([SAME, INCONCLUSIVE]) == "mixed"
    assert claim_verdict([]) == CANNOT


# ------------------------------------------------------------------------------------------ against cells


def test_same_image_pairs_measure_the_ratio_per_image() -> None:
    cells = [
        _cell("a/p", "a", {"call": "predict", "calls": 50}, [2.0, 2.1, 1.9]),
        _cell("a/c", "a", {"call": "call", "calls": 50}, [0.1, 0.11, 0.09]),
        _cell("b/c", "b", {"call": "call", "calls": 50}, [0.1, 0.1, 0.1]),  # another image: not paired
    ]
    row = assess(_claim(), cells, MARGIN)
    assert row.verdict == SAME and row.reason is None
    (m,) = row.measurements
    assert (m.numerator_cell, m.denominator_cell) == ("a/p", "a/c")
    assert m.ratio == pytest.approx(20.0)
    assert m.ratio_lo <= m.ratio <= m.ratio_hi
    assert m.magnitude == "below"  # reported 10x < measured CI around 20x
    assert "reported 10" in m.sentence


def test_unnamed_params_must_agree() -> None:
    cells = [
        _cell("a/p", "a", {"call": "predict", "calls": 50}, [2.0, 2.1]),
        _cell("a/c", "a", {"call": "call", "calls": 99}, [0.1, 0.11]),
    ]
    row = assess(_claim(), cells, MARGIN)
    assert row.verdict == CANNOT
    assert row.reason is not None and "do not pair up" in row.reason


def test_inconclusive_when_the_ci_includes_one() -> None:
    cells = [
        _cell("a/p", "a", {"call": "predict"}, [1.0, 1.5, 0.6]),
        _cell("a/c", "a", {"call": "call"}, [1.0, 0.7, 1.4]),
    ]
    row = assess(_claim(), cells, MARGIN)
    (m,) = row.measurements
    assert m.ratio_lo < 1 < m.ratio_hi
    assert m.verdict == row.verdict == INCONCLUSIVE


def test_cannot_speak_to_names_the_missing_side() -> None:
    claim = _claim(
        pairing="across_images",
        num={"workload": "mlp_loop", "params": {"mode": "graph"}, "image": {"tf_min": "2.0"}},
        den={"workload": "mlp_loop", "params": {"mode": "graph"}, "image": {"tf_max": "1.15"}},
    )
    cells = [_cell("b/g", "b", {"mode": "graph"}, [1.0, 1.1], workload="mlp_loop", tf="2.15", keras=2)]
    row = assess(claim, cells, MARGIN)
    assert row.verdict == CANNOT and not row.measurements
    assert row.reason is not None
    assert "TF \u2264 1.15" in row.reason and "TF \u2265 2.0" not in row.reason


def test_cannot_speak_to_when_matching_cells_have_no_executions() -> None:
    claim = _claim(
        pairing="across_images",
        num={"workload": "mlp_loop", "params": {"mode": "graph"}, "image": {"tf_min": "2.0"}},
        den={"workload": "mlp_loop", "params": {"mode": "graph"}, "image": {"tf_max": "1.15"}},
    )
    cells = [
        _cell("b/g", "b", {"mode": "graph"}, [1.0, 1.1], workload="mlp_loop", tf="2.15", keras=2),
        _cell("old/g", "old", {"mode": "graph"}, None, workload="mlp_loop", tf="1.15", keras=2),
    ]
    row = assess(claim, cells, MARGIN)
    assert row.verdict == CANNOT
    assert row.reason is not None and "matching cells of old have no usable step values" in row.reason


def test_across_images_selects_by_the_keras_that_ran() -> None:
    claim = _claim(
        ratio=20,
        pairing="across_images",
        num={"workload": "tiny_fit", "params": {"loop": "fit"}, "image": {"keras": 3}},
        den={"workload": "tiny_fit", "params": {"loop": "fit"}, "image": {"keras": 2}},
    )
    fit = {"loop": "fit", "input": "numpy"}
    cells = [
        _cell("k3", "tf2.21", fit, [0.03, 0.031, 0.029], workload="tiny_fit", keras=3),
        _cell("k2", "tf2.21-keras2", fit, [0.01, 0.011, 0.009], workload="tiny_fit", keras=2),
        _cell("old", "tf2.15", fit, [0.012, 0.012, 0.012], workload="tiny_fit", keras=2, tf="2.15"),
    ]
    row = assess(claim, cells, MARGIN)
    pairs = {(m.numerator_image, m.denominator_image) for m in row.measurements}
    assert pairs == {("tf2.21", "tf2.21-keras2"), ("tf2.21", "tf2.15")}
    assert row.verdict == SAME


def test_param_conditions() -> None:
    claim = _claim(
        num={"workload": "tiny_fit", "params": {"loop": "fit", "val_samples": {"gt": 0}}},
        den={"workload": "tiny_fit", "params": {"loop": "graph", "val_samples": {"gt": 0}}},
    )
    cells = [
        _cell("f0", "a", {"loop": "fit", "val_samples": 0}, [1.0, 1.0], workload="tiny_fit"),
        _cell("g0", "a", {"loop": "graph", "val_samples": 0}, [1.0, 1.0], workload="tiny_fit"),
    ]
    row = assess(claim, cells, MARGIN)
    assert row.verdict == CANNOT
    assert row.reason is not None and "val_samples>0" in row.reason


# ------------------------------------------------------------------------------------------ the data file


def test_packaged_claims_load_with_sources_and_ratios() -> None:
    claims = packaged_claims()
    assert len({c.id for c in claims}) == len(claims) >= 8
    assert all(c.sources and c.ratio > 0 and c.reported for c in claims)


def test_bad_claims_file_names_the_file_and_claim(tmp_path: Path) -> None:
    bad = tmp_path / "record.yaml"
    bad.write_text(
        "version: 1\nclaims:\n  - id: broken\n    title: x\n    sources: []\n    setup: s\n"
        "    reported: r\n    ratio: -1\n    ratio_basis: b\n"
        "    compare: {metric: wallclock, pairing: same_image, numerator: {workload: a}, "
        "denominator: {workload: b}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_claims(bad)
    text = str(info.value)
    assert str(bad) in text and "broken" in text
    assert "ratio" in text and "metric" in text and "sources" in text


def test_unknown_operator_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="between"):
        _claim(num={"workload": "tiny_fit", "params": {"val_samples": {"between": 1}}})


@pytest.mark.parametrize(
    ("side", "message"),
    [
        ({"workload": "tiny_fitt"}, "workload 'tiny_fitt': expected one of"),
        ({"workload": "tiny_fit", "params": {"loops": "fit"}}, "params.loops: not a parameter of tiny_fit"),
        ({"workload": "tiny_fit", "params": {"call": "fit"}}, "params.call: not a parameter of tiny_fit"),
        (
            {"workload": "tiny_fit", "params": {"loop": "fitt"}},
            "params.loop: expected 'fit' or 'graph', got 'fitt'",
        ),
        ({"workload": "mlp_loop", "params": {"mode": {"gt": 1}}}, "params.mode: a comparison needs a number"),
    ],
)
def test_a_selection_no_cell_could_match_is_refused(side: dict, message: str) -> None:
    """A typo would leave the claim "cannot speak to" whatever ran: the contract refuses it on load."""
    with pytest.raises(ValueError, match=message):
        _claim(num=side)


# ------------------------------------------------------------------------------------------ from a run's records

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_cell_facts_take_the_keras_that_ran_and_leave_contended_executions_out() -> None:
    from harness import analysis
    from harness.analysis.publicfacts import cell_facts
    from harness.results.store import load_run

    run = load_run(FIXTURES / "runs" / "20261126T142000Z-fixture-3f2a00")
    ana = analysis.analyse_run(run)
    facts = {f.cell_id: f for f in cell_facts(ana, ["step", "peak_rss"])}
    contended = [r for r in run.records if (r.get("contention") or {}).get("contended")]
    assert contended
    cell = contended[0]["cell_id"]
    used = [
        r["payload"]["memory"]["host_peak_rss_bytes"]
        for r in run.records
        if r["cell_id"] == cell and r["status"] == "ok" and not (r.get("contention") or {}).get("contended")
    ]
    assert sorted(facts[cell].values["peak_rss"].tolist()) == sorted(float(v) for v in used)
    assert len(facts[cell].values["step"]) == len(used)
    assert {(f.image, f.keras) for f in facts.values() if f.values} == {
        ("tf2.15-py3.11", 2),
        ("tf2.21-py3.11", 3),
    }


def test_a_non_step_metric_is_measured_from_per_execution_values() -> None:
    from harness import analysis
    from harness.analysis.publicfacts import cell_facts
    from harness.results.store import load_run

    run = load_run(next((FIXTURES / "public_record").iterdir()))
    claim = _claim(
        ratio=2.0,
        pairing="across_images",
        num={"workload": "call_overhead", "params": {"call": "predict"}, "image": {"keras": 3}},
        den={"workload": "call_overhead", "params": {"call": "predict"}, "image": {"keras": 2}},
    )
    claim = claim.model_copy(update={"compare": claim.compare.model_copy(update={"metric": "peak_rss"})})
    facts = cell_facts(analysis.analyse_run(run), ["step", "peak_rss"])
    row = assess(claim, facts, MARGIN)
    assert {m.denominator_image for m in row.measurements} == {"tf2.15-py3.11", "tf2.21-py3.11-keras2"}
    for m in row.measurements:
        num = next(f for f in facts if f.cell_id == m.numerator_cell).values["peak_rss"]
        den = next(f for f in facts if f.cell_id == m.denominator_cell).values["peak_rss"]
        assert m.ratio == pytest.approx(float(np.mean(num) / np.mean(den)))
        assert m.ratio_lo <= m.ratio <= m.ratio_hi and (m.n_numerator, m.n_denominator) == (3, 3)
