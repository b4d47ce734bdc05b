"""Host evidence per execution against the real Docker engine: cgroup telemetry of a real container, CPU
pinning (--cpuset-cpus) seen by the payload, and the calibration probe with and without a CPU quota."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from harness.cachedirs import default_root
from harness.execution.availability import prepare_cells
from harness.execution.docker_backend import DockerBackend
from harness.execution.execute import ExecOutcome, ExecRequest, build_spec, write_spec
from harness.execution.telemetry import SUMMARY_KEYS
from harness.execution.usage import CGROUP_ROOT
from harness.images.engine import DockerEngine
from harness.matrix.config import load_matrix
from harness.matrix.plan import Cell, expand

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent.parent
CGROUP_V1 = (CGROUP_ROOT / "cpuacct").is_dir() and not (CGROUP_ROOT / "cgroup.controllers").exists()


def _matrix(tmp: Path) -> Path:
    spec = load_matrix(ROOT / "matrix.yaml").images["tf2.15-py3.11"]  # same image as the repo's (cached)
    text = (
        "version: 1\nimages:\n"
        f'  tf2.15-py3.11: {{tf: "{spec.tf}", package: {spec.package}, python: "{spec.python}", '
        f"base: {{kind: bootstrap, suite: {spec.base.suite}}}}}\n"  # type: ignore[union-attr]
        + textwrap.dedent(
            """\
            workloads:
              mlp_loop: {params: {mode: graph}}
            defaults: {epochs: 1, train_samples: 640, eval_samples: 320, warmup_steps: 2, window_steps: 4,
                       intra_op_threads: 1, inter_op_threads: 1}
            profiles:
              t: {repeats: 1, timeout_s: 300}
            """
        )
    )
    path = tmp / "matrix.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[DockerBackend, Cell]:
    tmp = tmp_path_factory.mktemp("telemetry")
    engine = DockerEngine.connect()
    backend = DockerBackend(engine=engine, cache_dir=default_root(), labels={"tfmh.run": "itest-telemetry"})
    (cell,) = prepare_cells(backend, expand(load_matrix(_matrix(tmp)), "t").cells)
    assert cell.available, cell.reason
    return backend, cell


def _request(tmp: Path, cell: Cell, **kw: object) -> ExecRequest:
    req = ExecRequest("itest-telemetry", cell, 0, tmp / "in", tmp / "out", 300)
    req = replace(req, **kw)  # type: ignore[arg-type]
    write_spec(req, build_spec(cell, "/data"))
    return req


def _check_summary(outcome: ExecOutcome) -> dict[str, object]:
    t = outcome.telemetry
    assert t is not None and tuple(t) == SUMMARY_KEYS
    if CGROUP_V1:
        assert t["source"] == "cgroup-v1"
    assert isinstance(t["cpu_time_s"], float) and t["cpu_time_s"] > 0
    assert isinstance(t["container_peak_bytes"], int) and t["container_peak_bytes"] > 0
    assert isinstance(t["n_samples"], int) and t["n_samples"] >= 1
    assert (
        t["others_cores_mean"] is not None
        and t["host_cpus"] == len(Path("/proc/stat").read_text().split("\ncpu")) - 1
    )
    return t


def test_cell_records_cgroup_telemetry_and_is_pinned(
    tmp_path: Path, setup: tuple[DockerBackend, Cell]
) -> None:
    backend, cell = setup
    req = _request(tmp_path, cell, cpuset="0")
    outcome = backend.execute(req)
    assert outcome.exit_code == 0, outcome.logs[-3000:]
    t = _check_summary(outcome)
    assert isinstance(t["cpu_cores_mean"], float) and 0 < t["cpu_cores_mean"] <= 1.2  # one pinned CPU
    result = json.loads(req.result_path.read_text(encoding="utf-8"))
    assert result["status"] == "ok"
    assert result["runtime"]["cpu_affinity"] == [0]
    assert outcome.runner["limits"]["cpuset"] == "0"


def test_probe_doc_and_a_cpu_quota_lowers_its_matmul_rate(
    tmp_path: Path, setup: tuple[DockerBackend, Cell]
) -> None:
    backend, cell = setup
    docs = {}
    for label, cpus in (("free", None), ("quota", 0.3)):
        req = _request(tmp_path / label, cell, entry="probe", cpus=cpus)
        outcome = backend.execute(req)
        assert outcome.exit_code == 0, outcome.logs[-3000:]
        assert "tensorflow" not in outcome.logs.lower()
        doc = json.loads(req.result_path.read_text(encoding="utf-8"))
        assert doc["kind"] == "tfmh.probe" and doc["schema_version"] == 1 and doc["status"] == "ok"
        assert doc["matmul_n"] > 0 and doc["matmul_gflops"] > 0 and doc["loop_mops"] > 0
        assert len(doc["matmul_reps_s"]) >= 3 and doc["error"] is None
        assert doc["cpu_affinity"] and doc["started_at"] and doc["finished_at"]
        docs[label] = (doc, _check_summary(outcome))
    (free, _), (quota, quota_t) = docs["free"], docs["quota"]
    assert quota["matmul_gflops"] < 0.6 * free["matmul_gflops"], (
        quota["matmul_gflops"],
        free["matmul_gflops"],
    )
    if CGROUP_V1:
        assert isinstance(quota_t["throttled_periods"], int) and quota_t["throttled_periods"] > 0


def test_stats_api_fallback_when_the_cgroups_are_not_visible(
    tmp_path: Path, setup: tuple[DockerBackend, Cell]
) -> None:
    backend, cell = setup
    blind = replace(backend, cgroup_root=tmp_path / "no-cgroups")  # e.g. a harness inside a container
    outcome = blind.execute(_request(tmp_path, cell, entry="probe"))
    assert outcome.exit_code == 0, outcome.logs[-3000:]
    t = outcome.telemetry
    assert t is not None and t["source"] == "docker-stats"
    assert isinstance(t["cpu_time_s"], float) and t["cpu_time_s"] > 0
