"""`harness run` against the real Docker engine: fault isolation (crash, garbage, timeout, OOM), container
security, Ctrl-C then --resume, no containers left behind, and the ci profile end to end with its report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from harness.cachedirs import default_root
from harness.execution.availability import prepare_cells
from harness.execution.docker_backend import DockerBackend
from harness.execution.runner import Runner, plan_jobs
from harness.images.engine import DockerEngine
from harness.matrix.config import load_matrix
from harness.matrix.plan import expand
from harness.results.resultdocs import validate_record
from harness.results.store import RunStore, load_run

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent.parent

FAULT_PAYLOAD = textwrap.dedent(
    """\
    import argparse, json, os, socket, sys, time
    p = argparse.ArgumentParser(); p.add_argument("--spec"); p.add_argument("--out"); a = p.parse_args()
    spec = json.load(open(a.spec))
    seed = spec["seed"]
    def probe(fn):
        try:
            fn(); return "allowed"
        except Exception as exc:
            return "blocked(%s)" % type(exc).__name__
    print("uid=%d" % os.getuid())
    print("network=" + probe(lambda: socket.create_connection(("deb.debian.org", 80), timeout=3)))
    print("payload_write=" + probe(lambda: open(os.path.join(os.path.dirname(__file__), "x"), "w")))
    print("spec_write=" + probe(lambda: open(a.spec, "a")))
    print("root_write=" + probe(lambda: open("/etc/tfmh-test", "w")))
    sys.stdout.flush()
    if seed == 1:
        print("about to crash"); sys.stdout.flush(); os._exit(3)
    if seed == 2:
        open(a.out, "w").write("{this is not json")
    if seed == 3:
        time.sleep(600)
    if seed == 4:
        hog = []
        while True:
            hog.append(bytearray(64 * 1024 * 1024))
    """
)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _tf215_block() -> str:
    """The tf2.15-py3.11 image exactly as the repo's matrix declares it (so its image is shared/cached)."""
    spec = load_matrix(ROOT / "matrix.yaml").images["tf2.15-py3.11"]
    return (
        f'  tf2.15-py3.11: {{tf: "{spec.tf}", package: {spec.package}, python: "{spec.python}", '
        f"base: {{kind: bootstrap, suite: {spec.base.suite}}}}}\n"  # type: ignore[union-attr]
    )


@pytest.fixture(scope="module")
def engine() -> DockerEngine:
    return DockerEngine.connect()


def _leftovers(engine: DockerEngine, run_id: str) -> list[str]:
    return engine.list_containers({"tfmh.run": run_id})


def test_faults_are_recorded_and_isolated(tmp_path: Path, engine: DockerEngine) -> None:
    matrix = _write(
        tmp_path / "matrix.yaml",
        "version: 1\nimages:\n"
        + _tf215_block()
        + textwrap.dedent(
            """\
            workloads:
              mlp_loop: {params: {mode: graph, seed: [1, 2, 3, 4]}}
            profiles:
              faults: {repeats: 1, timeout_s: 20, mem_limit: 256m}
            """
        ),
    )
    payload = _write(tmp_path / "fault-payload" / "run.py", FAULT_PAYLOAD).parent
    payload.chmod(0o755)
    (payload / "run.py").chmod(0o644)
    plan = expand(load_matrix(matrix), "faults")
    backend = DockerBackend(engine=engine, cache_dir=default_root(), payload=payload)
    store = RunStore(tmp_path / "results" / "faults")
    cells = prepare_cells(backend, plan.cells)
    runner = Runner(backend, store, "itest-faults", timeout_s=20, mem_limit="256m")
    started = time.monotonic()
    runner.run(plan_jobs(cells, 1, set()))
    elapsed = time.monotonic() - started
    records = {r["cell"]["params"]["seed"]: r for r in store.iter_records()}
    assert sorted(records) == [1, 2, 3, 4]
    for record in records.values():
        assert validate_record(record) == []
    assert records[1]["status"] == "failed" and "exit code 3" in records[1]["reason"]
    assert "about to crash" in records[1]["log_tail"]
    assert records[2]["status"] == "failed" and "not valid JSON" in records[2]["reason"]
    assert records[3]["status"] == "timeout" and "timed out after 20 s" in records[3]["reason"]
    assert records[4]["status"] == "oom" and "256m" in records[4]["reason"]
    assert elapsed < 200
    # the container was isolated: non-root, no network, read-only payload/spec/root filesystem
    log = records[1]["log_tail"]
    assert "uid=1000" in log
    assert "network=blocked" in log
    assert "payload_write=blocked" in log and "spec_write=blocked" in log and "root_write=blocked" in log
    assert _leftovers(engine, "itest-faults") == []


def _cli(*args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-m", "harness", *args]


def _small_matrix(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "matrix.yaml",
        "version: 1\nimages:\n"
        + _tf215_block()
        + textwrap.dedent(
            """\
            workloads:
              mlp_loop: {params: {mode: [graph, function]}}
            defaults: {epochs: 1, train_samples: 640, eval_samples: 320, warmup_steps: 2, window_steps: 4}
            profiles:
              small: {repeats: 2, timeout_s: 300}
            """
        ),
    )


def _wait_for_records(cells_dir: Path, count: int, timeout_s: float, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cells_dir.is_dir() and len(list(cells_dir.glob("*.json"))) >= count:
            return
        if proc.poll() is not None:
            raise AssertionError(f"harness ended early with {proc.returncode}")
        time.sleep(0.2)
    raise AssertionError("no record appeared in time")


def test_interrupt_then_resume(tmp_path: Path, engine: DockerEngine) -> None:
    matrix = _small_matrix(tmp_path)
    results = tmp_path / "results"
    common = ["--matrix", str(matrix), "--profile", "small", "--results-dir", str(results)]
    # Ctrl-C on a foreground run: SIGINT's default handling even when the test runner was started in the
    # background by a shell that ignores SIGINT (Python would then ignore it too)
    proc = subprocess.Popen(
        _cli("run", *common, cwd=tmp_path),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    run_dirs: list[Path] = []
    deadline = time.monotonic() + 600
    while not run_dirs and time.monotonic() < deadline:
        run_dirs = [p for p in results.glob("*") if p.is_dir()] if results.is_dir() else []
        time.sleep(0.2)
    run_dir = run_dirs[0]
    _wait_for_records(run_dir / "cells", 1, 600, proc)
    time.sleep(2)  # the next container is starting or running: interrupt it mid-flight
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "--resume" in out
    kept = {p.name: p.read_bytes() for p in (run_dir / "cells").glob("*.json")}
    assert 1 <= len(kept) < 4
    assert _leftovers(engine, run_dir.name) == []
    assert not list((run_dir / "cells").glob(".*.tmp"))

    done = subprocess.run(
        _cli("run", *common, "--resume", run_dir.name, cwd=tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run = load_run(run_dir)
    final = [r for r in run.records if not r.get("rerun")]  # contended attempts are kept beside them
    keys = [(r["cell_id"], r["repeat"]) for r in final]
    assert len(keys) == 4 and len(set(keys)) == 4
    assert all(r["status"] == "ok" for r in run.records)
    for name, data in kept.items():
        assert (run_dir / "cells" / name).read_bytes() == data  # completed results untouched
    assert len(run.manifest["resumed_at"]) == 1
    assert _leftovers(engine, run_dir.name) == []


def test_ci_profile_end_to_end_with_report(tmp_path: Path, engine: DockerEngine) -> None:
    results, reports = tmp_path / "results", tmp_path / "reports"
    started = time.monotonic()
    proc = subprocess.run(
        _cli(
            "run",
            "--profile",
            "ci",
            "--report",
            "--results-dir",
            str(results),
            "--reports-dir",
            str(reports),
            cwd=ROOT,
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]
    run = load_run(run_dir)
    for record in run.records:
        assert validate_record(record) == [], record["cell_id"]
    registry = [r for r in run.records if r["cell"]["image"] == "tf1.15-py3.6-official"]
    assert registry and all(r["status"] == "unavailable" for r in registry)
    assert all("registry" in r["reason"] or "needs TF 2.x" in r["reason"] for r in registry)
    unreachable = [r for r in registry if "registry unreachable" in r["reason"]]
    for rec in unreachable:  # a short reason; the engine's raw error kept in the record
        assert len(rec["reason"]) <= 160 and "\n" not in rec["reason"], rec["reason"]
        assert rec["log_tail"].strip() and rec["log_tail"] != rec["reason"], rec
    for image, tf in (("tf2.15-py3.11", "2.15"), ("tf2.21-py3.11", "2.21")):
        mine = [r for r in run.records if r["cell"]["image"] == image and not r.get("rerun")]
        assert len(mine) == 7 * 2, image  # 7 workload variants x 2 repeats (contended re-runs aside)
        assert all(r["status"] == "ok" for r in mine), [r["reason"] for r in mine if r["status"] != "ok"]
        assert all(r["payload"]["runtime"]["tf_version"].startswith(tf) for r in mine)
    page = reports / run_dir.name / "index.html"
    assert page.is_file() and (reports / "index.html").is_file()
    html = page.read_text(encoding="utf-8")
    assert "registry unreachable" in html
    out = Path(os.environ.get("TFMH_ARTIFACTS", ROOT / "tests" / "artifacts"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "ci-profile-seconds.txt").write_text(f"{elapsed:.1f}\n", encoding="utf-8")
    _check_in_chromium(page, out / "ci-report.png")


def _check_in_chromium(page: Path, screenshot: Path) -> None:
    from tests.report.chromium import check_page  # the report tests' headless Chromium check

    check_page(page, screenshot)
