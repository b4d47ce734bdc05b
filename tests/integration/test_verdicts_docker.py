"""Verdicts on the real engine. The A/A claims are made inside one run, where the harness's rounds interleave
two identical images (A and A', same build spec under two names), which is how the harness asks users to
compare: separate runs minutes apart on a shared VM also differ by the host's own drift (20-40% here), which
no within-run CI holds. In one run, nothing is called faster or slower, also with a CPU hog on the host during
part of a run (its executions are marked contended, re-run and excluded). Across runs, every container held
to half the CPU is called slower with a CI that holds an independent measurement, and a calibration probe
slowed by a CPU limit flags its round."""

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

from harness import analysis
from harness.cachedirs import default_root
from harness.execution.availability import prepare_cells
from harness.execution.docker_backend import DockerBackend
from harness.execution.runner import Runner
from harness.images.engine import DockerEngine
from harness.results.resultdocs import validate_record
from harness.results.store import RunStore, load_run
from tests.integration.test_run_docker import ROOT, _tf215_block, _write

pytestmark = pytest.mark.docker

#: the A/A claims use a 10% margin: with 3 executions per cell (CV 10-20% on this VM) a valid 95% CI makes a
#: verdict beyond +-10% on identical images a <0.1% event per pair, so a failure here is the harness's fault
AA_MARGIN_PCT = 10


def _matrix(tmp_path: Path, *, twin: bool = True) -> Path:
    block = _tf215_block()
    images = block + (block.replace("tf2.15-py3.11:", "tf2.15-py3.11-twin:", 1) if twin else "")
    return _write(
        tmp_path / ("matrix.yaml" if twin else "matrix-one.yaml"),
        "version: 1\nimages:\n"
        + images
        + textwrap.dedent(
            f"""\
            baseline: tf2.15-py3.11
            workloads:
              mlp_loop: {{params: {{mode: graph}}}}
              mlp_fit: {{params: {{input: numpy}}}}
            defaults: {{epochs: 2, train_samples: 9600, eval_samples: 320, warmup_steps: 30, window_steps: 30}}
            profiles:
              aa: {{repeats: 3, timeout_s: 300, margin_pct: {AA_MARGIN_PCT}, quiet: {{wait_s: 60, reruns: 1}}}}
            """
        ),
    )


def _run(matrix: Path, results: Path, *extra: str) -> Path:
    before = set(results.glob("*")) if results.is_dir() else set()
    cmd = [sys.executable, "-m", "harness", "run", "--matrix", str(matrix), "--profile", "aa"]
    cmd += ["--results-dir", str(results), *extra]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500, check=False)
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
    """AA (A and A' interleaved), HOG (the same, a CPU hog during part of it) and HALF (A alone, every
    container at half the CPU A used)."""
    tmp = tmp_path_factory.mktemp("verdicts")
    matrix = _matrix(tmp)
    out = {"aa": _run(matrix, tmp / "aa")}
    hog = Hog(tmp / "hog", seconds=25)
    hog.thread.start()
    out["hog"] = _run(matrix, tmp / "hog", "--quiet-wait", "0")
    hog.thread.join()
    half = f"{_half_of_used_cpu(out['aa']):.2f}"
    out["half"] = _run(_matrix(tmp, twin=False), tmp / "half", "--cpus", half)
    return out


def _half_of_used_cpu(run: Path) -> float:
    """Half the CPU the executions of a run used (telemetry): a quota that makes them CPU-bound."""
    used = [r["telemetry"]["cpu_cores_mean"] for r in load_run(run).records if r["status"] == "ok"]
    return max(0.1, sum(used) / len(used) / 2)


def _in_run_verdicts(run_dir: Path) -> list[dict[str, Any]]:
    ana = analysis.analyse_run(load_run(run_dir))
    assert ana.margin_pct == AA_MARGIN_PCT and ana.baseline.used == "tf2.15-py3.11"
    rows: list[dict[str, Any]] = ana.comparisons.to_dict("records")
    return rows


def test_aa_in_one_run_calls_nothing_faster_or_slower(runs: dict[str, Path]) -> None:
    rows = _in_run_verdicts(runs["aa"])
    assert len(rows) == 2 and {r["b_image"] for r in rows} == {"tf2.15-py3.11-twin"}
    for row in rows:
        assert row["kind"] not in ("slower", "faster"), row["verdict"]
        assert row["ratio_lo"] <= 1.0 <= row["ratio_hi"] or row["kind"] == "same", row["verdict"]
        assert (
            row["a_n_exec"] >= 2 and row["b_n_exec"] >= 2
        )  # contended ones beyond the re-run bound excluded


def test_hog_executions_are_contended_rerun_listed_and_excluded(runs: dict[str, Path]) -> None:
    run = load_run(runs["hog"])
    assert all(validate_record(r) == [] for r in run.records)
    contended = [r for r in run.records if (r.get("contention") or {}).get("contended")]
    assert contended, "the hog overlapped no execution"
    assert all(rec["contention"]["reasons"] for rec in contended)  # every one says why
    by_others = [r for r in contended if "other processes used" in r["contention"]["reasons"][0]]
    assert by_others, "no execution was contended by the hog's cores"  # (steal alone may mark others)
    for rec in by_others:
        assert rec["telemetry"]["others_cores_mean"] > rec["contention"]["threshold_cores"]
    assert any(r.get("rerun") for r in contended)  # re-run up to the bound
    quiet = [
        r for r in run.records if r["status"] == "ok" and not (r.get("contention") or {}).get("contended")
    ]
    assert quiet and all(r["telemetry"]["others_cores_mean"] < 0.3 for r in quiet)
    for row in _in_run_verdicts(runs["hog"]):
        assert row["kind"] not in ("slower", "faster"), row["verdict"]
    ana = analysis.analyse_run(run)
    assert len(ana.contended) == len(contended)
    assert int(ana.cells.stats["n_contended"].sum()) == len(contended)  # every attempt, excluded
    # across runs the same exclusion holds: compare counts them per side
    doc = _compare(runs["aa"], runs["hog"])
    assert sum(c["contended_excluded"]["b"] for c in doc["cells"]) == len(contended)
    assert doc["host"]["matmul_change_pct"] is not None
    from harness.report.html import render_run_html

    html = render_run_html(run)
    assert 'id="contended-table"' in html and "excluded from every statistic and verdict" in html


def test_records_carry_host_evidence(runs: dict[str, Path]) -> None:
    for rec in load_run(runs["aa"]).records:
        tel = rec["telemetry"]
        assert (
            tel["source"].startswith("cgroup") and tel["cpu_time_s"] > 0 and tel["container_peak_bytes"] > 0
        )
        assert tel["others_cores_mean"] is not None and tel["steal_pct"] is not None
        assert tel["gate"]["quiet"] in (True, False) and rec["payload"]["memory"]["host_peak_rss_bytes"] > 0
    assert len(load_run(runs["aa"]).probes) == 4  # start + after each of 3 rounds


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
    doc = _compare(runs["aa"], runs["half"], "--fail-on-regression", "5")
    assert len(doc["cells"]) == 2 and doc["gate"] == "fail" and len(doc["only_in_a"]) == 2
    for cell in doc["cells"]:
        assert cell["verdict"] == "slower" and cell["regression"], cell
        lo, hi = cell["ci"]
        independent = _epoch_step_s(runs["half"], cell["cell_id"]) / _epoch_step_s(
            runs["aa"], cell["cell_id"]
        )
        assert lo * 0.95 <= independent <= hi * 1.05, (independent, cell)


def test_slowed_probe_flags_its_round(tmp_path: Path) -> None:
    from harness.matrix.config import load_matrix
    from harness.matrix.plan import expand

    plan = expand(load_matrix(_matrix(tmp_path, twin=False)), "aa")
    engine = DockerEngine.connect()
    backend = DockerBackend(engine=engine, cache_dir=default_root())
    cell = prepare_cells(backend, plan.cells)[0]
    store = RunStore(tmp_path / "probe-run")
    runner = Runner(backend, store, "itest-probe", timeout_s=120)
    runner.probe(cell, 0, "start")
    runner.probe(cell, 1, "after round 1", cpus=0.3)
    probes = list(store.iter_probes())
    assert all(p["status"] == "ok" for p in probes), probes
    drift = analysis.probe_drift(probes)
    assert drift.flagged_labels == ["after round 1"]
    assert drift.points[1].matmul_drift_pct < -30
