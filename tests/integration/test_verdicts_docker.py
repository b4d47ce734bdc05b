"""Verdicts on the real engine: an A/A comparison calls nothing faster or slower (also with a CPU hog on the
host during part of the second run, whose executions are marked contended, re-run and excluded), a run with
every container held to half the CPUs is called slower with a CI that holds an independent measurement,
and a calibration probe slowed by a CPU limit flags its round."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness import stats
from harness.backends import DockerBackend
from harness.engine import DockerEngine
from harness.images import default_cache_dir
from harness.runner import Runner, prepare_cells
from harness.store import RunStore, load_run, validate_record
from tests.integration.test_run_docker import ROOT, _tf215_block, _write

pytestmark = pytest.mark.docker


def _matrix(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "matrix.yaml",
        "version: 1\nimages:\n"
        + _tf215_block()
        + textwrap.dedent(
            """\
            workloads:
              mlp_loop: {params: {mode: graph}}
              mlp_fit: {params: {input: numpy}}
            defaults: {epochs: 2, train_samples: 9600, eval_samples: 320, warmup_steps: 30, window_steps: 30}
            profiles:
              aa: {repeats: 3, timeout_s: 300, quiet: {wait_s: 60, reruns: 1}}
            """
        ),
    )


def _run(matrix: Path, results: Path, *extra: str, hog_after: Path | None = None) -> Path:
    before = set(results.glob("*")) if results.is_dir() else set()
    cmd = [sys.executable, "-m", "harness", "run", "--matrix", str(matrix), "--profile", "aa"]
    cmd += ["--results-dir", str(results), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    (run_dir,) = set(results.glob("*")) - before
    return run_dir


def _compare(a: Path, b: Path, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "harness", "compare", str(a), str(b), "--format", "json", *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


class Hog:
    """A CPU busy loop on the host (outside any container) from the first record of a run for `seconds`."""

    def __init__(self, results: Path, seconds: float) -> None:
        self.results, self.seconds = results, seconds
        self.started_at: float | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if any(self.results.glob("*/cells/*.json")):
                break
            time.sleep(0.2)
        self.started_at = time.time()
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(self.seconds)
        finally:
            hog.kill()
            hog.wait()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A, B (identical), B' (a CPU hog during part of it) and C (every container at half the CPUs)."""
    tmp = tmp_path_factory.mktemp("verdicts")
    matrix = _matrix(tmp)
    out = {"a": _run(matrix, tmp / "a"), "b": _run(matrix, tmp / "b")}
    hog = Hog(tmp / "hog", seconds=25)
    hog.thread.start()
    out["hog"] = _run(matrix, tmp / "hog", "--quiet-wait", "0")
    hog.thread.join()
    out["half"] = _run(matrix, tmp / "half", "--cpus", f"{_half_of_used_cpu(out['a']):.2f}")
    return out


def _half_of_used_cpu(run: Path) -> float:
    """Half the CPU the executions of a run used (telemetry): a quota that makes them CPU-bound."""
    used = [r["telemetry"]["cpu_cores_mean"] for r in load_run(run).records if r["status"] == "ok"]
    return max(0.1, sum(used) / len(used) / 2)


def test_aa_calls_nothing_faster_or_slower(runs: dict[str, Path]) -> None:
    doc = _compare(runs["a"], runs["b"], "--fail-on-regression", "5")
    assert len(doc["cells"]) == 2
    assert doc["counts"]["slower"] == 0 and doc["counts"]["faster"] == 0, (doc["host"], doc["cells"])
    assert doc["gate"] == "pass"
    for cell in doc["cells"]:
        lo, hi = cell["ci"]  # widened by the host's own change when the probes say it changed
        assert lo <= 1.0 <= hi or cell["verdict"] == "same", cell


def test_hog_executions_are_contended_rerun_listed_and_excluded(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    run = load_run(runs["hog"])
    assert all(validate_record(r) == [] for r in run.records)
    contended = [r for r in run.records if (r.get("contention") or {}).get("contended")]
    assert contended, "the hog overlapped no execution"
    for rec in contended:
        tel = rec["telemetry"]
        assert tel["others_cores_mean"] > rec["contention"]["threshold_cores"]
        assert "other processes used" in rec["contention"]["reasons"][0]
    assert any(r.get("rerun") for r in contended)  # re-run up to the bound
    quiet = [
        r for r in run.records if r["status"] == "ok" and not (r.get("contention") or {}).get("contended")
    ]
    assert quiet and all(r["telemetry"]["others_cores_mean"] < 0.3 for r in quiet)
    doc = _compare(runs["a"], runs["hog"])
    assert doc["counts"]["slower"] == 0 and doc["counts"]["faster"] == 0, doc["cells"]
    assert sum(c["contended_excluded"]["b"] for c in doc["cells"]) == len(contended)  # every attempt
    ana = stats.analyse_run(run)
    assert len(ana.contended) == len(contended)
    from harness.report import render_run_html

    html = render_run_html(run)
    assert 'id="contended-table"' in html and "excluded from every statistic and verdict" in html


def test_records_carry_host_evidence(runs: dict[str, Path]) -> None:
    for rec in load_run(runs["a"]).records:
        tel = rec["telemetry"]
        assert (
            tel["source"].startswith("cgroup") and tel["cpu_time_s"] > 0 and tel["container_peak_bytes"] > 0
        )
        assert tel["others_cores_mean"] is not None and tel["steal_pct"] is not None
        assert tel["gate"]["quiet"] in (True, False) and rec["payload"]["memory"]["host_peak_rss_bytes"] > 0
    assert len(load_run(runs["a"]).probes) == 4  # start + after each of 3 rounds


def _epoch_step_s(run: Path, cell: str) -> float:
    """Independent of the window timer: the last epoch's wall time per step, mean over executions."""
    values = []
    for rec in load_run(run).records:
        if rec["cell_id"] == cell and rec["status"] == "ok" and not rec.get("rerun"):
            p = rec["payload"]
            values.append(p["epochs"]["epoch_time_s"][-1] / p["steps"]["steps_per_epoch"])
    return sum(values) / len(values)


def test_half_the_cpu_is_called_slower(runs: dict[str, Path]) -> None:
    """Every container held to half the CPU it used in run A: both CPU-bound cells are called slower, with
    CIs that hold the slowdown measured independently of the window timer (last epoch's time per step)."""
    doc = _compare(runs["a"], runs["half"], "--fail-on-regression", "5")
    assert len(doc["cells"]) == 2 and doc["gate"] == "fail"
    for cell in doc["cells"]:
        assert cell["verdict"] == "slower" and cell["regression"], cell
        lo, hi = cell["ci"]
        independent = _epoch_step_s(runs["half"], cell["cell_id"]) / _epoch_step_s(runs["a"], cell["cell_id"])
        assert lo * 0.95 <= independent <= hi * 1.05, (independent, cell)


def test_slowed_probe_flags_its_round(tmp_path: Path) -> None:
    from harness.config import load_matrix
    from harness.plan import expand

    plan = expand(load_matrix(_matrix(tmp_path)), "aa")
    engine = DockerEngine.connect()
    backend = DockerBackend(engine=engine, cache_dir=default_cache_dir())
    cell = prepare_cells(backend, plan.cells)[0]
    store = RunStore(tmp_path / "probe-run")
    runner = Runner(backend, store, "itest-probe", timeout_s=120)
    runner.probe(cell, 0, "start")
    runner.probe(cell, 1, "after round 1", cpus=0.3)
    probes = list(store.iter_probes())
    assert all(p["status"] == "ok" for p in probes), probes
    drift = stats.probe_drift(probes)
    assert drift.flagged_labels == ["after round 1"]
    assert drift.points[1].matmul_drift_pct < -30
