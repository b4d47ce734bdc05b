"""The runner through the Backend protocol with a fake backend: statuses, fault isolation, Ctrl-C and
resume, unavailable cells, records that validate against the schema."""

from __future__ import annotations

import copy
import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.execution.availability import prepare_cells
from harness.execution.execute import Availability, ExecOutcome, ExecRequest
from harness.execution.runner import Runner, exit_code_for, plan_jobs
from harness.matrix.config import load_matrix
from harness.matrix.plan import Cell, expand
from harness.results.resultdocs import validate_record
from harness.results.store import RunStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "runs"

MATRIX = textwrap.dedent(
    """\
    version: 1
    images:
      tf2.15-py3.11: {tf: "2.15.1", package: tensorflow-cpu==2.15.1, python: "3.11", base: {kind: bootstrap}}
      tf2.21-py3.11: {tf: "2.21.0", package: tensorflow-cpu==2.21.0, python: "3.11", base: {kind: bootstrap}}
      tf1.15-py3.6:
        {tf: "1.15.5", package: tensorflow-gpu==1.15.5, python: "3.6", cuda: "10.0", cudnn: "7.6",
         base: {kind: registry, image: "tensorflow/tensorflow:1.15.5-gpu-py3"}, devices: [gpu]}
    workloads:
      mlp_loop: {params: {mode: [graph, eager]}}
    profiles:
      t: {repeats: 2}
    """
)


def template_payload() -> dict[str, Any]:
    """A real-shaped payload result (from the recorded fixtures)."""
    for path in sorted(FIXTURES.glob("*/cells/*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc["status"] == "ok":
            return dict(doc["payload"])
    raise AssertionError("no ok fixture record")


Behaviour = Callable[[ExecRequest], ExecOutcome]


def ok(request: ExecRequest) -> ExecOutcome:
    doc = copy.deepcopy(template_payload())
    doc["cell_id"] = request.cell.cell_id
    spec = json.loads(request.spec_path.read_text(encoding="utf-8"))
    doc["spec"] = spec
    request.result_path.write_text(json.dumps(doc), encoding="utf-8")
    return ExecOutcome(exit_code=0, logs="fine\n", runner={"image_tag": "fake:1", "image_id": "sha256:f"})


def crash(request: ExecRequest) -> ExecOutcome:
    return ExecOutcome(exit_code=139, logs="Segmentation fault (core dumped)\n")


def garbage(request: ExecRequest) -> ExecOutcome:
    request.result_path.write_text("{not json", encoding="utf-8")
    return ExecOutcome(exit_code=0, logs="")


def wrong_shape(request: ExecRequest) -> ExecOutcome:
    request.result_path.write_text(json.dumps({"schema_version": 1, "status": "ok"}), encoding="utf-8")
    return ExecOutcome(exit_code=0)


def timeout(request: ExecRequest) -> ExecOutcome:
    return ExecOutcome(exit_code=None, timed_out=True, logs="epoch 1/5\n")


def oom(request: ExecRequest) -> ExecOutcome:
    return ExecOutcome(exit_code=137, oom_killed=True)


def payload_failed(request: ExecRequest) -> ExecOutcome:
    doc = copy.deepcopy(template_payload())
    doc.update(cell_id=request.cell.cell_id, status="failed")
    doc["error"] = {"type": "ValueError", "message": "mnist.npz missing", "traceback": "Traceback ..."}
    request.result_path.write_text(json.dumps(doc), encoding="utf-8")
    return ExecOutcome(exit_code=1)


class FakeBackend:
    """Implements harness.execution.execute.Backend; behaviour chosen per cell id substring."""

    kind = "fake"

    def __init__(
        self, behaviours: dict[str, Behaviour] | None = None, interrupt_at: int | None = None
    ) -> None:
        self.behaviours = behaviours or {}
        self.interrupt_at = interrupt_at
        self.calls: list[tuple[str, int]] = []
        self.cleaned = 0

    def check(self, cells: list[Cell]) -> dict[str, Availability]:
        return {c.image.name: Availability(True) for c in cells}

    def prepare(self, cells: list[Cell]) -> dict[str, Availability]:
        return {c.image.name: Availability(True) for c in cells}

    def device_available(self, device: str) -> Availability:
        return Availability(device == "cpu", None if device == "cpu" else "no GPU: fake host has none")

    def data_path(self, host_dir: Path | None) -> str:
        return f"fake:{host_dir}" if host_dir is not None else ""

    def engine_version(self) -> str | None:
        return None

    def execute(self, request: ExecRequest) -> ExecOutcome:
        if self.interrupt_at is not None and len(self.calls) == self.interrupt_at:
            raise KeyboardInterrupt
        self.calls.append((request.cell.cell_id, request.repeat))
        assert request.spec_path.exists()
        for needle, behaviour in self.behaviours.items():
            if needle in request.cell.cell_id:
                return behaviour(request)
        return ok(request)

    def cleanup(self) -> int:
        self.cleaned += 1
        return 0


@pytest.fixture
def cells(tmp_path: Path) -> list[Cell]:
    path = tmp_path / "matrix.yaml"
    path.write_text(MATRIX, encoding="utf-8")
    return expand(load_matrix(path), "t").cells


def run(tmp_path: Path, cells: list[Cell], backend: FakeBackend, repeats: int = 2) -> RunStore:
    store = RunStore(tmp_path / "results" / "run1")
    prepared = prepare_cells(backend, cells)
    runner = Runner(backend, store, "run1", timeout_s=30)
    runner.run(plan_jobs(prepared, repeats, store.done()))
    return store


def by_cell(store: RunStore) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["cell_id"], r["repeat"]): r for r in store.iter_records()}


def test_all_ok_records_validate(tmp_path: Path, cells: list[Cell]) -> None:
    store = run(tmp_path, cells, FakeBackend())
    records = by_cell(store)
    ok_records = [r for r in records.values() if r["status"] == "ok"]
    assert len(ok_records) == 8  # 2 TF2 images x (graph, eager) x 2 repeats
    for record in records.values():
        assert validate_record(record) == []
    assert exit_code_for(list(records.values()), strict=False) == 0
    assert not (store.path / ".work").exists()


def test_faults_stay_in_their_cell(tmp_path: Path, cells: list[Cell]) -> None:
    backend = FakeBackend(
        {"tf2.21-py3.11-cpu/mlp_loop-eager": timeout, "tf2.21-py3.11-cpu/mlp_loop-graph": crash}
    )
    records = by_cell(run(tmp_path, cells, backend))
    assert records[("tf2.21-py3.11-cpu/mlp_loop-eager/bs32", 1)]["status"] == "timeout"
    crashed = records[("tf2.21-py3.11-cpu/mlp_loop-graph/bs32", 0)]
    assert crashed["status"] == "failed" and "exit code 139" in crashed["reason"]
    assert "Segmentation fault" in crashed["log_tail"]
    assert records[("tf2.15-py3.11-cpu/mlp_loop-eager/bs32", 1)]["status"] == "ok"
    assert exit_code_for(list(records.values()), strict=False) == 1


@pytest.mark.parametrize(
    ("behaviour", "status", "reason"),
    [
        (garbage, "failed", "not valid JSON"),
        (wrong_shape, "failed", "bad output"),
        (oom, "oom", "OOM killer"),
        (timeout, "timeout", "timed out after 30 s"),
        (payload_failed, "failed", "ValueError: mnist.npz missing"),
        (crash, "failed", "wrote no result file"),
    ],
)
def test_classification(
    tmp_path: Path, cells: list[Cell], behaviour: Behaviour, status: str, reason: str
) -> None:
    records = by_cell(run(tmp_path, cells, FakeBackend({"tf2.15-py3.11-cpu/mlp_loop-graph": behaviour}), 1))
    record = records[("tf2.15-py3.11-cpu/mlp_loop-graph/bs32", 0)]
    assert record["status"] == status
    assert reason in record["reason"]
    assert validate_record(record) == []


def test_unavailable_cells_get_one_record_with_reason(tmp_path: Path, cells: list[Cell]) -> None:
    records = by_cell(run(tmp_path, cells, FakeBackend()))
    gpu = [r for r in records.values() if r["cell"]["device"] == "gpu"]
    assert {r["repeat"] for r in gpu} == {0}
    assert all(r["status"] == "unavailable" for r in gpu)
    reasons = {r["cell"]["params"]["mode"]: r["reason"] for r in gpu}
    assert "no GPU: fake host has none" in reasons["graph"]
    assert "needs TF 2.x" in reasons["eager"]
    assert exit_code_for(list(records.values()), strict=False) == 0
    assert exit_code_for(list(records.values()), strict=True) == 1


def test_interrupt_then_resume_completes_without_duplicates(tmp_path: Path, cells: list[Cell]) -> None:
    first = FakeBackend(interrupt_at=3)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, cells, first)
    store = RunStore(tmp_path / "results" / "run1")
    kept = store.done()
    assert len(kept) >= 3  # the gpu cells (unavailable) and the 3 executions that finished
    assert set(first.calls) <= kept
    second = FakeBackend()
    run(tmp_path, cells, second)
    assert not set(second.calls) & set(first.calls)  # nothing ran twice
    records = by_cell(store)
    runnable = [c for c in cells if c.device == "cpu"]
    assert len([k for k in records if records[k]["status"] == "ok"]) == len(runnable) * 2
    assert len(list(store.cells_dir.glob("*.json"))) == len(records)
    assert not list(store.cells_dir.glob(".*tmp"))


class BrokenImageBackend(FakeBackend):
    def prepare(self, cells: list[Cell]) -> dict[str, Availability]:
        out = super().prepare(cells)
        out["tf2.21-py3.11"] = Availability(
            False,
            "image build failed: pip: no matching distribution",
            failed=True,
            detail="Step 4/9 : RUN pip install ...\nERROR: No matching distribution found for tensorflow==9.9",
        )
        return out


def test_failed_image_build_fails_only_its_cells(tmp_path: Path, cells: list[Cell]) -> None:
    records = by_cell(run(tmp_path, cells, BrokenImageBackend()))
    broken = [r for r in records.values() if r["cell"]["image"] == "tf2.21-py3.11"]
    assert broken and all(r["status"] == "failed" and "image build failed" in r["reason"] for r in broken)
    assert all("No matching distribution found for tensorflow==9.9" in r["log_tail"] for r in broken)
    assert all(r["status"] == "ok" for r in records.values() if r["cell"]["image"] == "tf2.15-py3.11")
    assert exit_code_for(list(records.values()), strict=False) == 1


def test_jobs_interleave_repeats_to_spread_drift(cells: list[Cell]) -> None:
    jobs = plan_jobs(cells, 3, set())
    runnable = [c.cell_id for c in cells if c.available]
    order = [(j.cell.cell_id, j.repeat) for j in jobs if j.cell.available]
    assert [r for _, r in order] == sorted(r for _, r in order)  # repeat 0 of everything first
    assert [c for c, r in order if r == 0] == runnable
    assert [c for c, r in order if r == 1] == runnable[::-1]
    assert len(jobs) == len(runnable) * 3 + sum(not c.available for c in cells)
    skipped = plan_jobs(cells, 3, {(runnable[0], 1)})
    assert (runnable[0], 1) not in {(j.cell.cell_id, j.repeat) for j in skipped}
