"""Matrix expansion: axes, include/exclude, readable deterministic cell IDs, sharding."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.matrix.config import load_matrix
from harness.matrix.plan import expand, parse_shard, select_shard
from harness.matrix.testedconfigs import check_matrix_images, load_table

MATRIX = textwrap.dedent(
    """\
    version: 1
    images:
      tf1.15-py3.6:
        {tf: "1.15.5", package: tensorflow-gpu==1.15.5, python: "3.6", cuda: "10.0", cudnn: "7.6",
         base: {kind: registry, image: "tensorflow/tensorflow:1.15.5-gpu-py3"}, devices: [gpu, cpu]}
      tf2.15-py3.11:
        {tf: "2.15.1", package: tensorflow-cpu==2.15.1, python: "3.11", base: {kind: bootstrap}}
    workloads:
      mlp_fit: {params: {input: [numpy, tfdata]}}
      mlp_loop: {params: {mode: [graph, function, eager]}}
    defaults: {batch_size: [32, 128]}
    profiles:
      all: {}
      cpu:
        devices: [cpu]
        exclude:
          - {workload: mlp_fit, input: tfdata}
          - {image: tf2.15-py3.11, mode: eager}
        include:
          - {image: tf2.15-py3.11, device: cpu, workload: mlp_fit, input: tfdata, batch_size: 1024}
    """
)


@pytest.fixture
def matrix(tmp_path: Path):
    path = tmp_path / "matrix.yaml"
    path.write_text(MATRIX, encoding="utf-8")
    return load_matrix(path)


def test_product_of_axes(matrix) -> None:
    plan = expand(matrix, "all")
    # tf1: 2 devices x (2 inputs + 3 modes) x 2 batch sizes; tf2: 1 device x 5 x 2
    assert len(plan.cells) == 2 * 5 * 2 + 5 * 2
    ids = [c.cell_id for c in plan.cells]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert "tf2.15-py3.11-cpu/mlp_loop-graph/bs32" in ids
    assert "tf1.15-py3.6-gpu/mlp_fit-tfdata/bs128" in ids


def test_cell_ids_are_deterministic(matrix) -> None:
    assert [c.cell_id for c in expand(matrix, "all").cells] == [
        c.cell_id for c in expand(matrix, "all").cells
    ]


def test_irrelevant_params_are_dropped(matrix) -> None:
    cells = {c.cell_id: c for c in expand(matrix, "all").cells}
    assert "mode" not in cells["tf2.15-py3.11-cpu/mlp_fit-numpy/bs32"].params
    assert "input" not in cells["tf2.15-py3.11-cpu/mlp_loop-eager/bs32"].params
    assert cells["tf2.15-py3.11-cpu/mlp_fit-numpy/bs32"].params["epochs"] == 5


def test_tf1_cannot_run_tf2_modes(matrix) -> None:
    cells = {c.cell_id: c for c in expand(matrix, "all").cells}
    eager = cells["tf1.15-py3.6-cpu/mlp_loop-eager/bs32"]
    assert not eager.available and "needs TF 2.x" in (eager.reason or "")
    assert cells["tf1.15-py3.6-cpu/mlp_loop-graph/bs32"].available


def test_exclude_and_include(matrix) -> None:
    ids = {c.cell_id for c in expand(matrix, "cpu").cells}
    assert not any("gpu" in i.split("/")[0] for i in ids)
    assert "tf2.15-py3.11-cpu/mlp_fit-tfdata/bs32" not in ids
    assert "tf2.15-py3.11-cpu/mlp_loop-eager/bs32" not in ids
    assert "tf1.15-py3.6-cpu/mlp_loop-eager/bs32" in ids  # only excluded for the tf2 image
    assert "tf2.15-py3.11-cpu/mlp_fit-tfdata/bs1024" in ids


@pytest.mark.parametrize("n", [1, 2, 3, 7, 40])
def test_shards_partition_every_cell_exactly_once(matrix, n: int) -> None:
    cells = expand(matrix, "all").cells
    shards = [select_shard(cells, k, n) for k in range(1, n + 1)]
    flat = [c.cell_id for shard in shards for c in shard]
    assert sorted(flat) == sorted(c.cell_id for c in cells)
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("text", ["0/2", "3/2", "a/b", "2", "1/0"])
def test_bad_shard(text: str) -> None:
    with pytest.raises(ConfigError, match="--shard"):
        parse_shard(text)


def test_repo_matrix_is_valid_and_tested(root: Path) -> None:
    path = root / "matrix.yaml"
    matrix = load_matrix(path)
    check_matrix_images(matrix.images, load_table(), path)
    for profile in ("default", "ci", "gpu-nightly"):
        assert expand(matrix, profile).cells, profile
    # the seed comparison: a TF 1.15 GPU image (CUDA 10.0 / cuDNN 7) from a registry
    tf1 = matrix.images[matrix.baseline or ""]
    assert tf1.tf.startswith("1.15") and tf1.cuda == "10.0" and (tf1.cudnn or "").startswith("7")
    assert tf1.base.kind == "registry"
