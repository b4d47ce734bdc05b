"""compare_runs: the table and the regression exit code."""

from __future__ import annotations

import copy
import io
import json

import pytest
from rich.console import Console

from harness.analysis.compare import compare_runs
from harness.errors import ResultError
from harness.results.store import RunData
from tests.report.probes import probe_records


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=250, color_system=None), buf


def _scaled(run: RunData, factor: float, cell_prefix: str | None = None) -> RunData:
    out = copy.deepcopy(run)
    for rec in out.records:
        if rec["status"] == "ok" and (cell_prefix is None or rec["cell_id"].startswith(cell_prefix)):
            steps = rec["payload"]["steps"]
            steps["step_time_s"] = [t * factor for t in steps["step_time_s"]]
    return out


def test_identical_runs_pass(current_run: RunData) -> None:
    console, buf = _console()
    assert compare_runs(current_run, current_run, 0.0, console) == 0
    text = buf.getvalue()
    assert "same within \u00b13%" in text and "regression gate passed" in text
    assert "\n0 slower, 0 faster" in text


def test_regression_beyond_threshold_fails(current_run: RunData) -> None:
    slower = _scaled(current_run, 1.5, "tf2.21-py3.11-cpu/cnn_fit")
    console, buf = _console()
    assert compare_runs(current_run, slower, 10.0, console) == 1
    text = buf.getvalue()
    assert "REGRESSION" in text and "regression gate FAILED" in text
    assert "1.500\u00d7" in text


def test_json_gate_names_the_deciding_cells(current_run: RunData) -> None:
    slower = _scaled(current_run, 1.5, "tf2.21-py3.11-cpu/cnn_fit")
    console, buf = _console()
    assert compare_runs(current_run, slower, 10.0, console, as_json=True) == 1
    doc = json.loads(buf.getvalue())
    assert doc["kind"] == "tfmh.compare" and doc["gate"] == "fail" and doc["unit"] == "execution"
    assert doc["regressions"] and all(c.startswith("tf2.21-py3.11-cpu/cnn_fit") for c in doc["regressions"])
    by = {c["cell_id"]: c for c in doc["cells"]}
    for cell in doc["regressions"]:
        assert by[cell]["ci"][0] > 1.10 and by[cell]["verdict"] == "slower"
    untouched = [c for c in doc["cells"] if "cnn_fit" not in c["cell_id"]]
    assert untouched and all(c["verdict"] == "same" and c["ratio"] == 1.0 for c in untouched)
    assert set(doc["counts"]) == {"slower", "faster", "same", "inconclusive", "not comparable"}


def test_point_estimate_alone_never_fails(current_run: RunData) -> None:
    """A shift whose CI still reaches below the threshold does not trip the gate."""
    noisy = copy.deepcopy(current_run)
    for rec in noisy.records:
        if rec["status"] == "ok" and rec["cell_id"].startswith("tf2.21-py3.11-cpu/cnn_fit"):
            factor = 1.3 if rec["repeat"] != 1 else 0.9
            rec["payload"]["steps"]["step_time_s"] = [
                t * factor for t in rec["payload"]["steps"]["step_time_s"]
            ]
    console, buf = _console()
    assert compare_runs(current_run, noisy, 10.0, console, as_json=True) == 0
    doc = json.loads(buf.getvalue())
    cells = [c for c in doc["cells"] if "cnn_fit" in c["cell_id"]]
    assert any(c["ratio"] > 1.1 for c in cells) and all(c["ci"][0] <= 1.1 for c in cells)


def test_gate_without_shared_cells_is_an_error(current_run: RunData) -> None:
    empty = copy.deepcopy(current_run)
    empty.records = [r for r in empty.records if r["status"] != "ok"]
    console, _ = _console()
    with pytest.raises(ResultError, match="the gate cannot decide"):
        compare_runs(current_run, empty, 5.0, console)


def test_regression_below_threshold_passes(current_run: RunData) -> None:
    slower = _scaled(current_run, 1.5, "tf2.21-py3.11-cpu/cnn_fit")
    console, _ = _console()
    assert compare_runs(current_run, slower, 60.0, console) == 0


def test_improvement_never_fails(current_run: RunData) -> None:
    faster = _scaled(current_run, 0.5)
    console, buf = _console()
    assert compare_runs(current_run, faster, 0.0, console) == 0
    assert "faster than A" in buf.getvalue()


def test_no_threshold_is_informational(current_run: RunData) -> None:
    slower = _scaled(current_run, 3.0)
    console, buf = _console()
    assert compare_runs(current_run, slower, None, console) == 0
    assert "slower than A" in buf.getvalue()


def test_unmatched_cells_reported(current_run: RunData, earlier_run: RunData) -> None:
    console, buf = _console()
    compare_runs(earlier_run, current_run, None, console)
    assert "not compared" not in buf.getvalue()  # earlier run's cells all exist in current
    console, buf = _console()
    partial = copy.deepcopy(current_run)
    partial.records = [r for r in partial.records if "cnn_fit" not in r["cell_id"]]
    compare_runs(current_run, partial, None, console)
    assert "not compared: 2 cell(s) measured only in A" in buf.getvalue()


def _with_probes(run: RunData, rates: list[float]) -> RunData:
    out = copy.deepcopy(run)
    out.probes = probe_records(rates)
    return out


def test_a_changed_host_widens_every_ci_before_a_verdict(current_run: RunData) -> None:
    """B's host ran 20% slower (probes): only differences beyond that are called; the gate still decides."""
    a = _with_probes(current_run, [100.0, 101.0, 99.0])
    slower = _with_probes(_scaled(current_run, 2.0, "tf2.21-py3.11-cpu/cnn_fit"), [80.0, 81.0, 79.0])
    console, buf = _console()
    assert compare_runs(a, slower, 10.0, console, as_json=True) == 1
    doc = json.loads(buf.getvalue())
    assert doc["host"]["confounded"] and doc["host"]["matmul_change_pct"] == -20.0
    assert "widened by 20.0% on both sides" in doc["host"]["note"] and doc["host"]["ci_widened_pct"] == 20.0
    for cell in doc["cells"]:
        lo, hi = cell["measured_ci"]
        assert cell["ci"][0] == pytest.approx(lo / 1.2) and cell["ci"][1] == pytest.approx(hi * 1.2)
        if cell["cell_id"].startswith("tf2.21-py3.11-cpu/cnn_fit"):
            assert cell["verdict"] == "slower" and cell["regression"]  # 2x is beyond the host's 20%
        else:
            assert (
                cell["verdict"] == "inconclusive" and not cell["regression"]
            )  # identical data, changed host
    assert doc["counts"]["faster"] == 0


def test_a_steady_host_is_reported_and_decides(current_run: RunData) -> None:
    a = _with_probes(current_run, [100.0, 101.0, 99.0])
    b = _with_probes(_scaled(current_run, 1.5, "tf2.21-py3.11-cpu/cnn_fit"), [98.0, 99.0, 100.0])
    console, buf = _console()
    assert compare_runs(a, b, 10.0, console) == 1
    assert "host speed (calibration probe, B vs A): -1.0% matmul; largest swing within a run 1.0%" in (
        buf.getvalue()
    )


def test_a_host_that_swung_within_a_run_widens_every_ci(current_run: RunData) -> None:
    """Equal median probe rates, but one probe of B 30% slower than B's median: the host moved by that much
    while these runs were measured, so a cross-run difference of that size is not called."""
    a = _with_probes(current_run, [100.0, 101.0, 99.0])
    b = _with_probes(
        _scaled(current_run, 1.2, "tf2.21-py3.11-cpu/cnn_fit"), [100.0, 70.0, 101.0, 99.0, 100.0]
    )
    console, buf = _console()
    assert compare_runs(a, b, 10.0, console, as_json=True) == 0
    doc = json.loads(buf.getvalue())
    host = doc["host"]
    assert host["confounded"] and abs(host["matmul_change_pct"]) < 1 and host["within_run_swing_pct"] == 30.0
    assert host["ci_widened_pct"] == 30.0 and "swung by up to 30.0% within a run" in host["note"]
    for cell in doc["cells"]:
        lo, hi = cell["measured_ci"]
        assert cell["ci"][0] == pytest.approx(lo / 1.3) and cell["ci"][1] == pytest.approx(hi * 1.3)
        assert cell["verdict"] not in ("slower", "faster") and not cell["regression"], cell


def test_a_changed_payload_is_named_in_both_outputs(current_run: RunData) -> None:
    """Runs whose payloads differ measured differently: compare says so (JSON and table)."""
    a, b = copy.deepcopy(current_run), copy.deepcopy(current_run)
    a.manifest["payload_sha256"], b.manifest["payload_sha256"] = "a" * 64, "b" * 64
    console, buf = _console()
    compare_runs(a, b, None, console, as_json=True)
    doc = json.loads(buf.getvalue())
    assert doc["payload"]["changed"] and "payload changed between the runs" in doc["payload"]["note"]
    console, buf = _console()
    compare_runs(a, b, None, console)
    assert "warning: the payload changed between the runs (sha256 aaaaaaaaaaaa in A, bbbbbbbbbbbb" in (
        " ".join(buf.getvalue().split())
    )
    console, buf = _console()
    compare_runs(a, copy.deepcopy(a), None, console, as_json=True)
    assert json.loads(buf.getvalue())["payload"] == {
        "a": "a" * 64,
        "b": "a" * 64,
        "changed": False,
        "note": None,
    }
