"""The local runner: the payload command line in a real interpreter, timeouts kill the process group."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.execution.execute import ExecRequest, build_spec, write_spec
from harness.execution.local_backend import LocalBackend
from harness.execution.telemetry import SUMMARY_KEYS
from harness.matrix.config import cpuset_cpus, load_matrix
from harness.matrix.plan import Cell, expand

MATRIX = textwrap.dedent(
    """\
    version: 1
    images:
      tf2.15-py3.11: {tf: "2.15.1", package: tensorflow-cpu==2.15.1, python: "3.11", base: {kind: bootstrap}}
    workloads:
      mlp_loop: {params: {mode: [graph]}}
    profiles:
      t: {repeats: 1}
    """
)

FAKE_RUN = textwrap.dedent(
    """\
    import argparse, json, os, sys, time
    p = argparse.ArgumentParser(); p.add_argument("--spec"); p.add_argument("--out")
    p.add_argument("--probe", action="store_true"); a = p.parse_args()
    if a.probe:
        json.dump({"kind": "tfmh.probe", "argv": sys.argv[1:]}, open(a.out, "w")); sys.exit(0)
    spec = json.load(open(a.spec))
    if os.environ.get("FAKE_SLEEP"):
        open(os.environ["FAKE_PIDFILE"], "w").write(str(os.getpid()))
        time.sleep(60)
    if os.environ.get("FAKE_BUSY_S"):
        end = time.process_time() + float(os.environ["FAKE_BUSY_S"])
        hog = bytearray(64 * 1024 * 1024)
        while time.process_time() < end:
            pass
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    json.dump({"echo": spec["cell_id"], "argv": sys.argv[1:], "affinity": affinity}, open(a.out, "w"))
    print("done")
    """
)


@pytest.fixture
def cell(tmp_path: Path) -> Cell:
    path = tmp_path / "matrix.yaml"
    path.write_text(MATRIX, encoding="utf-8")
    return expand(load_matrix(path), "t").cells[0]


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    d = tmp_path / "payload"
    d.mkdir()
    (d / "run.py").write_text(FAKE_RUN, encoding="utf-8")
    return d


def _request(tmp_path: Path, cell: Cell, timeout_s: float, **kw: object) -> ExecRequest:
    req = ExecRequest("r", cell, 0, tmp_path / "w" / "in", tmp_path / "w" / "out", timeout_s, **kw)  # type: ignore[arg-type]
    write_spec(req, build_spec(cell, ""))
    return req


def test_runs_payload_with_spec_and_out(tmp_path: Path, cell: Cell, payload: Path) -> None:
    backend = LocalBackend(python=sys.executable, payload=payload)
    outcome = backend.execute(_request(tmp_path, cell, 30))
    assert outcome.exit_code == 0 and not outcome.timed_out
    doc = json.loads((tmp_path / "w" / "out" / "result.json").read_text())
    assert doc["echo"] == cell.cell_id
    assert doc["argv"][0] == "--spec" and doc["argv"][1].endswith("spec.json")
    assert "done" in outcome.logs
    assert outcome.runner["python"] == sys.executable


def test_timeout_kills_the_process(
    tmp_path: Path, cell: Cell, payload: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pidfile = tmp_path / "pid"
    monkeypatch.setenv("FAKE_SLEEP", "1")
    monkeypatch.setenv("FAKE_PIDFILE", str(pidfile))
    started = time.monotonic()
    outcome = LocalBackend(python=sys.executable, payload=payload).execute(_request(tmp_path, cell, 2))
    assert outcome.timed_out
    assert time.monotonic() - started < 20
    pid = int(pidfile.read_text())
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_missing_interpreter_is_a_config_error(cell: Cell) -> None:
    with pytest.raises(ConfigError, match="is not an interpreter"):
        LocalBackend(python="/nonexistent/python").prepare([cell])


def test_process_group_telemetry_of_a_busy_payload(
    tmp_path: Path, cell: Cell, payload: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_BUSY_S", "0.5")
    outcome = LocalBackend(python=sys.executable, payload=payload).execute(_request(tmp_path, cell, 60))
    assert outcome.exit_code == 0, outcome.logs
    t = outcome.telemetry
    assert t is not None and tuple(t) == SUMMARY_KEYS
    assert t["source"] == "proc" and t["n_samples"] >= 1
    assert 0.5 <= t["cpu_time_s"] < 0.5 + 5  # the busy loop plus interpreter start (exact, from wait4)
    assert t["container_peak_bytes"] > 64 * 1024 * 1024  # the 64 MiB bytearray was resident
    assert t["wall_s"] > 0.5 and t["cpu_cores_mean"] > 0
    assert t["others_cores_mean"] is not None and t["others_cores_mean"] >= 0
    assert outcome.runner["limits"] == {}


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_cpuset_pins_the_local_payload(tmp_path: Path, cell: Cell, payload: Path) -> None:
    outcome = LocalBackend(python=sys.executable, payload=payload).execute(
        _request(tmp_path, cell, 30, cpuset="0")
    )
    assert outcome.exit_code == 0, outcome.logs
    doc = json.loads((tmp_path / "w" / "out" / "result.json").read_text())
    assert doc["affinity"] == [0]
    assert outcome.runner["limits"] == {"cpuset": "0"}


def test_probe_entry_runs_without_a_spec(tmp_path: Path, cell: Cell, payload: Path) -> None:
    req = ExecRequest("r", cell, 0, tmp_path / "p" / "in", tmp_path / "p" / "out", 30, entry="probe")
    req.out_dir.mkdir(parents=True)
    outcome = LocalBackend(python=sys.executable, payload=payload, telemetry_interval_s=None).execute(req)
    assert outcome.exit_code == 0, outcome.logs
    assert outcome.telemetry is None
    doc = json.loads(req.result_path.read_text())
    assert doc["kind"] == "tfmh.probe"
    assert doc["argv"] == ["--probe", "--out", str(req.result_path)]


def test_cpuset_cpus() -> None:
    assert cpuset_cpus("0-2,5") == {0, 1, 2, 5}
    assert cpuset_cpus("3") == {3}
    with pytest.raises(ValueError):
        cpuset_cpus("3-1")
