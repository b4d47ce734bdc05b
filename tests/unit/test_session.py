"""The run session through the Backend protocol with a fake backend: contended executions are re-run and
kept, the quiet-host gate is asked before each execution, probes run before/between/after rounds, adaptive
rounds stop at the CI target, the repeat cap or the budget, and settings resolve without `or` fallbacks."""

from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import analysis
from harness.analysis import stored as analysis_files
from harness.errors import ConfigError
from harness.execution.execute import Availability, ExecOutcome, ExecRequest
from harness.execution.session import RunSession
from harness.execution.settings import Overrides, RunOptions, RunSettings
from harness.matrix.config import Profile
from harness.matrix.plan import Cell
from harness.matrix.source import load_source
from harness.results.resultdocs import validate_record
from tests.unit.test_runner import template_payload

MATRIX = textwrap.dedent(
    """\
    version: 1
    baseline: tf2.15-py3.11
    images:
      tf2.15-py3.11: {tf: "2.15.1", package: tensorflow-cpu==2.15.1, python: "3.11", base: {kind: bootstrap}}
      tf2.21-py3.11: {tf: "2.21.0", package: tensorflow-cpu==2.21.0, python: "3.11", base: {kind: bootstrap}}
    workloads:
      mlp_loop: {params: {mode: graph}}
    profiles:
      t: {repeats: 2, quiet: {wait_s: 0, reruns: 2}}
    """
)

QUIET = {
    "source": "fake",
    "host_cpus": 2,
    "others_cores_mean": 0.02,
    "others_cores_max": 0.1,
    "steal_pct": 0.0,
    "cpu_time_s": 3.0,
    "container_peak_bytes": 10**8,
}
BUSY = {**QUIET, "others_cores_mean": 0.9, "others_cores_max": 1.0}


class ScriptedBackend:
    """Step times ~ level(image) x lognormal noise per execution; telemetry busy for chosen executions."""

    kind = "fake"

    def __init__(self, noise: float = 0.002, busy: set[int] | None = None, slow: float = 1.0, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.noise = noise
        self.busy = busy or set()
        self.slow = slow
        self.calls: list[tuple[str, str, int]] = []

    def check(self, cells: list[Cell]) -> dict[str, Availability]:
        return {c.image.name: Availability(True) for c in cells}

    def prepare(self, cells: list[Cell]) -> dict[str, Availability]:
        return {c.image.name: Availability(True) for c in cells}

    def device_available(self, device: str) -> Availability:
        return Availability(True)

    def data_path(self, host_dir: Path | None) -> str:
        return "/data"

    def engine_version(self) -> str | None:
        return None

    def execute(self, request: ExecRequest) -> ExecOutcome:
        n = len(self.calls)
        self.calls.append((request.entry, request.cell.cell_id, request.repeat))
        if request.entry == "probe":
            doc = {
                "kind": "tfmh.probe",
                "schema_version": 1,
                "status": "ok",
                "matmul_gflops": 50.0 - n * 0.01,
                "loop_mops": 20.0,
            }
            (request.out_dir / "result.json").write_text(json.dumps(doc), encoding="utf-8")
            return ExecOutcome(exit_code=0, telemetry=dict(QUIET))
        level = 0.01 * (self.slow if "tf2.21" in request.cell.cell_id else 1.0)
        level *= float(np.exp(self.rng.normal(0, self.noise)))
        doc = copy.deepcopy(template_payload())
        doc["cell_id"] = request.cell.cell_id
        doc["spec"] = json.loads(request.spec_path.read_text(encoding="utf-8"))
        doc["steps"]["step_time_s"] = [level * float(np.exp(self.rng.normal(0, 0.01))) for _ in range(10)]
        request.result_path.write_text(json.dumps(doc), encoding="utf-8")
        telemetry = dict(BUSY if n in self.busy else QUIET)
        return ExecOutcome(exit_code=0, logs="", wall_s=10.0, telemetry=telemetry)

    def cleanup(self) -> int:
        return 0


def _session(
    tmp_path: Path,
    backend: Any,
    gate: Any = None,
    resume: str | None = None,
    params: tuple[str, ...] = (),
    **overrides: Any,
) -> RunSession:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "matrix.yaml"
    path.write_text(MATRIX, encoding="utf-8")
    source = load_source(path, "t", params=params)
    settings = RunSettings.resolve("t", source.plan.profile, Overrides(**overrides))
    options = RunOptions(results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", resume=resume)
    session = RunSession.open(source, settings, options, backend, gate=gate)
    session.prepare()
    return session


def test_contended_execution_is_rerun_and_both_records_are_kept(tmp_path: Path) -> None:
    backend = ScriptedBackend(busy={1})  # call 0 is the start probe; call 1 the first execution
    session = _session(tmp_path, backend)
    records = session.run()
    reruns = [r for r in records if r.get("rerun")]
    assert len(reruns) == 1 and reruns[0]["contention"]["contended"]
    assert "other processes used 0.90 cores on average, max 1.00" in reruns[0]["contention"]["reasons"][0]
    final = [
        r
        for r in records
        if r["cell_id"] == reruns[0]["cell_id"] and r["repeat"] == reruns[0]["repeat"] and not r.get("rerun")
    ]
    assert len(final) == 1 and final[0]["attempt"] == 1 and not final[0]["contention"]["contended"]
    assert all(validate_record(r) == [] for r in records)
    assert len(session.store.done()) == 4  # 2 cells x 2 repeats, the rerun attempt aside
    assert len(list(session.store.cells_dir.glob("*__a0.json"))) == 1


def test_a_resumed_run_continues_the_attempt_numbering(tmp_path: Path) -> None:
    """Interrupted after a contended attempt was kept but before its re-run finished: on resume the next
    attempts get new numbers, so the kept evidence is never overwritten."""
    first = _session(tmp_path, ScriptedBackend(busy={1}))
    records = first.run()
    (rerun,) = [r for r in records if r.get("rerun")]
    store = first.store
    kept = store.record_path(rerun["cell_id"], rerun["repeat"], 0)
    before = kept.read_bytes()
    store.record_path(rerun["cell_id"], rerun["repeat"]).unlink()  # the final record never got written
    assert store.next_attempt(rerun["cell_id"], rerun["repeat"]) == 1
    # its first execution is contended again
    resumed = _session(tmp_path, ScriptedBackend(busy={1}), resume=first.run_id)
    assert resumed.store.path == store.path
    resumed.run()
    assert kept.read_bytes() == before
    mine = [
        r for r in store.load().records if (r["cell_id"], r["repeat"]) == (rerun["cell_id"], rerun["repeat"])
    ]
    assert sorted((r["attempt"], bool(r.get("rerun"))) for r in mine) == [(0, True), (1, True), (2, False)]


def test_contended_beyond_the_bound_is_kept_but_excluded(tmp_path: Path) -> None:
    backend = ScriptedBackend(busy={1, 2, 3})
    session = _session(tmp_path, backend, reruns=2)
    records = session.run()
    cell = [r for r in records if r["attempt"] == 2]
    assert len(cell) == 1 and cell[0]["contention"]["contended"] and not cell[0].get("rerun")
    ana = analysis.analyse_run(session.store.load())
    row = ana.cells.stats.loc[cell[0]["cell_id"]]
    assert row["n_contended"] == 3 and row["n_used"] == 1 and row["n_rerun"] == 2
    assert len(ana.contended) == 3


def test_a_finished_run_stores_its_analysis_beside_the_records(tmp_path: Path) -> None:
    session = _session(tmp_path, ScriptedBackend(busy={1}))
    records = session.run()
    run = session.store.load()
    stored = analysis_files.read_stored(session.store.path)
    assert stored is not None and session.analysis is not None
    assert stored.inputs == analysis_files.inputs_of(run) and stored.n_records == len(records)
    assert stored.to_json() == session.analysis.to_json() == analysis_files.compute(run).to_json()
    assert any(c.n_contended for c in stored.cells)  # the default view: contended executions excluded


def test_gate_is_asked_before_every_execution_and_recorded(tmp_path: Path) -> None:
    asked: list[tuple[float, float]] = []

    def gate(threshold: float, timeout: float) -> dict[str, Any]:
        asked.append((threshold, timeout))
        return {"quiet": True, "waited_s": 0.5, "others_cores": 0.01, "threshold_cores": threshold}

    session = _session(tmp_path, ScriptedBackend(), gate=gate, quiet_wait_s=30, quiet_threshold=0.2)
    records = session.run()
    assert len(asked) == 4 and all(t == (pytest.approx(0.4), 30) for t in asked)
    assert all(r["telemetry"]["gate"]["waited_s"] == 0.5 for r in records)


def test_probes_before_between_and_after_rounds(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    session = _session(tmp_path, backend)
    session.run()
    probes = list(session.store.iter_probes())
    assert [p["label"] for p in probes] == ["start", "after round 1", "after round 2"]
    assert all(p["image"] == "tf2.15-py3.11" and p["status"] == "ok" for p in probes)  # the baseline image
    entries = [c[0] for c in backend.calls]
    assert entries == ["probe", "cell", "cell", "probe", "cell", "cell", "probe"]
    assert analysis.analyse_run(session.store.load()).drift.peak_flops == pytest.approx(49.97e9)
    assert not (session.store.path / ".work").exists()  # no scratch left behind by the last probe


def test_adaptive_rounds_stop_at_the_target(tmp_path: Path) -> None:
    backend = ScriptedBackend(noise=0.004, seed=3)
    session = _session(tmp_path, backend, target_ci_pct=1.0, max_repeats=12, probe=False)
    session.run()
    adaptive = session.manifest["adaptive"]
    assert adaptive["stopped"] == "target reached" and adaptive["rounds"] >= 1
    assert all(p["reached"] and p["half_width_pct"] <= 1.0 for p in adaptive["pairs"])
    counts = {c: 1 + max(r for cc, r in session.store.done() if cc == c) for c, _ in session.store.done()}
    assert 2 < max(counts.values()) <= 12


def test_adaptive_rounds_stop_at_max_repeats_and_budget(tmp_path: Path) -> None:
    session = _session(
        tmp_path / "a", ScriptedBackend(noise=0.05), target_ci_pct=0.1, max_repeats=4, probe=False
    )
    session.run()
    assert session.manifest["adaptive"]["stopped"] == "max repeats"
    assert max(r for _, r in session.store.done()) == 3
    assert not any(p["reached"] for p in session.manifest["adaptive"]["pairs"])
    clock = iter(range(0, 10_000, 7))
    session = _session(
        tmp_path / "b", ScriptedBackend(noise=0.05), target_ci_pct=0.1, budget="30s", probe=False
    )
    session.monotonic = lambda: float(next(clock))
    session.run()
    assert session.manifest["adaptive"]["stopped"] == "budget"
    # rounds are estimated at 2 x 10 s; the clock reads 7 s (7 + 20 <= 30: one round), then 14 s (34 > 30)
    assert session.manifest["adaptive"]["rounds"] == 1
    assert max(r for _, r in session.store.done()) == 2


def test_settings_resolve_without_or_fallbacks() -> None:
    profile = Profile(repeats=3, timeout_s=100, cpuset="0-1", target_ci_pct=3)
    s = RunSettings.resolve("p", profile, Overrides())
    assert (s.repeats, s.timeout_s, s.cpuset, s.max_repeats, s.margin_pct) == (3, 100.0, "0-1", 12, 3.0)
    s = RunSettings.resolve("p", profile, Overrides(repeats=5, margin_pct=2.0, budget="1h30m"))
    assert (s.repeats, s.margin_pct, s.budget_s) == (5, 2.0, 5400.0)
    for bad, message in [
        (Overrides(repeats=0), "--repeats: expected 1..100, got 0"),
        (Overrides(timeout_s=float("nan")), "--timeout"),
        (Overrides(cpus=-1.0), "--cpus"),
        (Overrides(cpuset="3-1"), "--cpuset: cpuset '3-1': range '3-1' runs backwards"),
        (Overrides(budget="lots"), "--budget: 'lots' is not a duration"),
        (Overrides(max_repeats=2), "--max-repeats: expected 3..100"),
        (Overrides(target_ci_pct=0.0), "--target-ci"),
        (Overrides(margin_pct=float("inf")), "--margin"),
        (Overrides(quiet_threshold=2.0), "--quiet-threshold"),
        (Overrides(reruns=-1), "--reruns"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            RunSettings.resolve("p", profile, bad)


def test_cpuset_sets_thread_counts(tmp_path: Path) -> None:
    session = _session(tmp_path, ScriptedBackend(), cpuset="1", probe=False)
    assert all(c.params["intra_op_threads"] == 1 for c in session.cells)
    session.run()
    specs = [r["payload"]["spec"] for r in session.store.iter_records()]
    assert specs and all(s["intra_op_threads"] == 1 for s in specs)
    assert session.manifest["settings"]["cpuset"] == "1"


def test_explicit_command_line_values_win_even_when_zero_or_false() -> None:
    profile = Profile(repeats=3, probe=True, quiet={"wait_s": 30, "reruns": 2, "threshold": 0.5})
    s = RunSettings.resolve("p", profile, Overrides(quiet_wait_s=0, reruns=0, probe=False))
    assert (s.quiet.wait_s, s.quiet.reruns, s.probe, s.quiet.threshold) == (0, 0, False, 0.5)
    s = RunSettings.resolve("p", profile, Overrides())
    assert (s.quiet.wait_s, s.quiet.reruns, s.probe) == (30, 2, True)


def test_run_options_name_the_bad_option(tmp_path: Path) -> None:
    for kwargs, message in [
        ({"runner": "podman"}, "--runner: expected one of docker, local, got 'podman'"),
        ({"resume": "  "}, "--resume: expected a run id or path, got an empty string"),
        ({"data_dir": tmp_path / "nope"}, f"--data-dir {tmp_path / 'nope'}: no such folder"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            RunOptions(**kwargs)
    assert RunOptions(cache_dir=tmp_path).cache() == tmp_path


class NoRegistryBackend(ScriptedBackend):
    """The registry of tf2.21 does not answer: the availability step says so, and that image is never made."""

    RAW = "Get https://registry-1.docker.io/v2/: dial tcp: lookup registry-1.docker.io: no such host"

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[str] = []

    def check(self, cells: list[Cell]) -> dict[str, Availability]:
        return {
            c.image.name: Availability(
                False, "registry unreachable: registry-1.docker.io (no DNS)", detail=self.RAW
            )
            if "tf2.21" in c.image.name
            else Availability(True)
            for c in cells
        }

    def prepare(self, cells: list[Cell]) -> dict[str, Availability]:
        self.prepared += [c.cell_id for c in cells]
        return super().prepare(cells)


def test_run_takes_the_availability_step_plan_takes(tmp_path: Path) -> None:
    from harness.execution.availability import check_cells

    backend = NoRegistryBackend()
    session = _session(tmp_path, backend, probe=False)
    planned = {c.cell_id: c for c in check_cells(backend, session.source.cells)}
    ran = {c.cell_id: c for c in session.cells}
    assert {k: (c.available, c.reason, c.detail) for k, c in planned.items()} == {
        k: (c.available, c.reason, c.detail) for k, c in ran.items()
    }
    (gone,) = [c for c in ran.values() if not c.available]
    assert (
        gone.image.name == "tf2.21-py3.11"
        and gone.reason == "registry unreachable: registry-1.docker.io (no DNS)"
    )
    assert gone.cell_id not in backend.prepared  # never pulled or built
    records = {r["cell_id"]: r for r in session.run()}
    assert records[gone.cell_id]["status"] == "unavailable"
    assert records[gone.cell_id]["log_tail"] == NoRegistryBackend.RAW  # the engine's raw error is kept


class DataBackend(ScriptedBackend):
    def data_path(self, host_dir: Path | None) -> str:
        return f"host:{host_dir}"


def test_the_data_dir_reaches_the_payload(tmp_path: Path) -> None:
    import hashlib

    from harness.execution.datasets import DataSource

    data = tmp_path / "data"
    data.mkdir()
    (data / "mnist.npz").write_bytes(b"not really mnist")
    source = DataSource(url="http://127.0.0.1:9/none", sha256=hashlib.sha256(b"not really mnist").hexdigest())
    path = tmp_path / "matrix.yaml"
    path.write_text(MATRIX.replace("{mode: graph}", "{mode: graph, data: mnist}"), encoding="utf-8")
    src = load_source(path, "t")
    settings = RunSettings.resolve("t", src.plan.profile, Overrides(repeats=1, probe=False))
    options = RunOptions(results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", data_dir=data)
    session = RunSession.open(src, settings, options, DataBackend(), data_source=source)
    session.prepare()
    assert all(c.available for c in session.cells)
    specs = [r["payload"]["spec"] for r in session.run()]
    assert specs and {s["data_dir"] for s in specs} == {f"host:{data}"}
    assert not (tmp_path / "cache").exists()  # nothing was downloaded


def test_param_values_reach_the_payload_and_the_manifest(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    session = _session(tmp_path, backend, params=("epochs=1", "train_samples=640"), probe=False)
    records = session.run()
    assert records and all(
        r["payload"]["spec"]["epochs"] == 1 and r["payload"]["spec"]["train_samples"] == 640 for r in records
    )
    manifest = session.store.read_manifest()
    assert manifest["params"] == {"epochs": 1, "train_samples": 640}


def test_resume_needs_the_same_param_values(tmp_path: Path) -> None:
    first = _session(tmp_path, ScriptedBackend(), params=("epochs=1",), probe=False)
    first.run()
    with pytest.raises(ConfigError, match=r"made with --param epochs=1; resume it with the same"):
        _session(tmp_path, ScriptedBackend(), resume=first.run_id, probe=False)
    with pytest.raises(ConfigError, match="made with --param epochs=1"):
        _session(tmp_path, ScriptedBackend(), resume=first.run_id, params=("epochs=2",), probe=False)
    again = _session(tmp_path, ScriptedBackend(), resume=first.run_id, params=("epochs=1",), probe=False)
    assert again.run_id == first.run_id


def test_a_run_made_before_param_values_were_recorded_resumes_without_them(tmp_path: Path) -> None:
    first = _session(tmp_path, ScriptedBackend(), probe=False)
    first.run()
    manifest = first.store.read_manifest()
    del manifest["params"]  # a manifest written by an older harness
    first.store.write_manifest(manifest)
    again = _session(tmp_path, ScriptedBackend(), resume=first.run_id, probe=False)
    assert again.run_id == first.run_id
    with pytest.raises(ConfigError, match="made with no --param"):
        _session(tmp_path, ScriptedBackend(), resume=first.run_id, params=("epochs=1",), probe=False)
