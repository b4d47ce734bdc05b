"""The availability step `harness plan` and `harness run` share: the docker backend asks the registry (once
per base, never pulling) and keeps the engine's raw error beside a short reason; a GPU the engine cannot
give makes GPU cells unavailable; without an engine every runnable cell says why."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from harness.execution.availability import check_cells, engine_unreachable
from harness.execution.docker_backend import DockerBackend
from harness.matrix.config import load_matrix
from harness.matrix.plan import Cell, expand

MATRIX = textwrap.dedent(
    """\
    version: 1
    images:
      tf2.15-py3.11: {tf: "2.15.1", package: tensorflow-cpu==2.15.1, python: "3.11", base: {kind: bootstrap}}
      tf1.15-py3.6:
        {tf: "1.15.5", package: tensorflow-gpu==1.15.5, python: "3.6", cuda: "10.0", cudnn: "7.6",
         base: {kind: registry, image: "tensorflow/tensorflow:1.15.5-gpu-py3"}, devices: [cpu, gpu]}
    workloads:
      mlp_loop: {params: {mode: [graph, eager]}}
    profiles:
      t: {repeats: 1}
    """
)
RAW = 'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: no such host'


class AskingEngine:
    """What the availability step may use of the engine: it asks, it never pulls."""

    def __init__(self, registry_ok: bool, gpu_ok: bool) -> None:
        self.registry_ok = registry_ok
        self.gpu_ok = gpu_ok
        self.asked: list[str] = []

    def registry_available(self, ref: str, timeout_s: float = 20.0) -> tuple[bool, str]:
        self.asked.append(ref)
        return (True, "in the registry") if self.registry_ok else (False, RAW)

    def gpu_available(self) -> tuple[bool, str]:
        return (True, "nvidia runtime") if self.gpu_ok else (False, "no nvidia runtime")

    def registry_pull(self, ref: str, timeout_s: float = 60.0) -> tuple[bool, str]:
        raise AssertionError("the availability step must not pull")


@pytest.fixture
def cells(tmp_path: Path) -> list[Cell]:
    path = tmp_path / "matrix.yaml"
    path.write_text(MATRIX, encoding="utf-8")
    return expand(load_matrix(path), "t").cells


def _backend(engine: AskingEngine, tmp_path: Path) -> Any:
    return DockerBackend(engine=engine, cache_dir=tmp_path / "cache")  # type: ignore[arg-type]


def test_unreachable_registry_gives_a_short_reason_and_keeps_the_raw_error(
    cells: list[Cell], tmp_path: Path
) -> None:
    engine = AskingEngine(registry_ok=False, gpu_ok=True)
    checked = {c.cell_id: c for c in check_cells(_backend(engine, tmp_path), cells)}
    tf1 = [c for c in checked.values() if c.image.name == "tf1.15-py3.6" and c.params["mode"] == "graph"]
    assert len(tf1) == 2  # cpu and gpu
    for cell in tf1:
        assert not cell.available and cell.skip_status == "unavailable"
        assert cell.reason == "registry unreachable: registry-1.docker.io (no DNS)"
        assert cell.detail == RAW
    assert engine.asked == ["tensorflow/tensorflow:1.15.5-gpu-py3"]  # once for the base, never pulled
    eager = [c for c in checked.values() if c.image.name == "tf1.15-py3.6" and c.params["mode"] == "eager"]
    assert all("needs TF 2.x" in (c.reason or "") for c in eager)  # the plan's own reason stays
    assert all(c.available for c in checked.values() if c.image.name == "tf2.15-py3.11")
    assert not (tmp_path / "cache").exists()  # nothing made


def test_no_gpu_makes_only_gpu_cells_unavailable(cells: list[Cell], tmp_path: Path) -> None:
    checked = check_cells(_backend(AskingEngine(registry_ok=True, gpu_ok=False), tmp_path), cells)
    gpu = [c for c in checked if c.device == "gpu" and c.params["mode"] == "graph"]
    assert gpu and all(c.reason == "no GPU: no nvidia runtime" for c in gpu)
    assert all(c.available for c in checked if c.device == "cpu" and c.params["mode"] == "graph")


def test_without_an_engine_every_runnable_cell_says_why(cells: list[Cell]) -> None:
    marked = engine_unreachable(cells, "cannot reach the Docker engine")
    runnable = [c for c in cells if c.available]
    assert runnable and all(
        m.reason == "cannot ask the Docker engine: cannot reach the Docker engine"
        for m, c in zip(marked, cells, strict=True)
        if c.available
    )
    assert [m.reason for m, c in zip(marked, cells, strict=True) if not c.available] == [
        c.reason for c in cells if not c.available
    ]
