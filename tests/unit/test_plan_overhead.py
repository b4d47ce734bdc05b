"""Planning the overhead workloads: tiny_fit's input collapses under loop=graph, call_overhead's eager calls
need TF 2.x, parameters a workload does not use are null in its spec, and the repo's measuring profiles
keep their cells."""

from __future__ import annotations

import importlib.util
import re
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

from harness.execution.execute import build_spec
from harness.matrix.config import load_matrix
from harness.matrix.params import PARAMS, settle, tf2_only_reason
from harness.matrix.plan import expand
from harness.paths import payload_dir

MATRIX = textwrap.dedent(
    """\
    version: 1
    images:
      tf1.15-py3.6:
        {tf: "1.15.5", package: tensorflow-cpu==1.15.5, python: "3.6", base: {kind: bootstrap}}
      tf2.21-py3.11:
        {tf: "2.21.0", package: tensorflow-cpu==2.21.0, python: "3.11", base: {kind: bootstrap}}
    workloads:
      tiny_fit: {params: {loop: [fit, graph], input: [numpy, tfdata], train_samples: 10, batch_size: 10}}
      call_overhead: {params: {call: [predict, call, function, fit, train_on_batch], batch_size: 1}}
    profiles:
      all: {}
      no-numpy:
        images: [tf2.21-py3.11]
        exclude: [{input: numpy}]
      no-graph:
        images: [tf2.21-py3.11]
        workloads: [tiny_fit]
        exclude: [{loop: graph}]
    """
)


@pytest.fixture
def matrix(tmp_path: Path):
    path = tmp_path / "matrix.yaml"
    path.write_text(MATRIX, encoding="utf-8")
    return load_matrix(path)


@pytest.fixture(scope="module")
def cellspec() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tfmh_cellspec_overhead", payload_dir() / "cellspec.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cells(matrix, profile: str = "all") -> dict:
    return {c.cell_id: c for c in expand(matrix, profile).cells}


def test_tiny_fit_input_collapses_under_the_graph_loop(matrix, cellspec) -> None:
    cells = {k: c for k, c in _cells(matrix).items() if k.startswith("tf2.21-py3.11-cpu/tiny_fit")}
    assert sorted(cells) == [
        "tf2.21-py3.11-cpu/tiny_fit-fit-numpy/bs10",
        "tf2.21-py3.11-cpu/tiny_fit-fit-tfdata/bs10",
        "tf2.21-py3.11-cpu/tiny_fit-graph/bs10",
    ]
    graph = cells["tf2.21-py3.11-cpu/tiny_fit-graph/bs10"]
    assert graph.params["loop"] == "graph" and graph.params["input"] is None
    spec = build_spec(graph, "/data")
    assert spec["input"] is None and spec["loop"] == "graph" and spec["val_samples"] == 10
    assert cellspec.check_spec(dict(spec)) == spec
    with pytest.raises(cellspec.SpecError, match=re.escape("spec.input means nothing when loop=graph")):
        cellspec.check_spec({**spec, "input": "numpy"})
    fit = build_spec(cells["tf2.21-py3.11-cpu/tiny_fit-fit-numpy/bs10"], "/data")
    with pytest.raises(cellspec.SpecError, match=re.escape("spec.input must be one of numpy|tfdata")):
        cellspec.check_spec({**fit, "input": None})


def test_excludes_match_the_collapsed_values(matrix) -> None:
    ids = set(_cells(matrix, "no-numpy"))
    assert "tf2.21-py3.11-cpu/tiny_fit-graph/bs10" in ids  # its input is null, not numpy
    assert "tf2.21-py3.11-cpu/tiny_fit-fit-numpy/bs10" not in ids
    assert set(_cells(matrix, "no-graph")) == {
        "tf2.21-py3.11-cpu/tiny_fit-fit-numpy/bs10",
        "tf2.21-py3.11-cpu/tiny_fit-fit-tfdata/bs10",
    }


@pytest.mark.parametrize(
    "call, tf2_only", [("predict", False), ("call", True), ("function", True), ("fit", False),
                       ("train_on_batch", False)]
)  # fmt: skip
def test_eager_calls_are_unavailable_on_tf1(matrix, call: str, tf2_only: bool) -> None:
    cells = _cells(matrix)
    tf1 = cells[f"tf1.15-py3.6-cpu/call_overhead-{call}/bs1"]
    assert tf1.available is not tf2_only
    if tf2_only:
        assert tf1.reason == f"unsupported: call '{call}' needs TF 2.x (image tf1.15-py3.6 has TF 1.15.5)"
    assert cells[f"tf2.21-py3.11-cpu/call_overhead-{call}/bs1"].available


def test_tf2_only_reason_names_the_parameter() -> None:
    assert tf2_only_reason({"mode": "eager"}) == "mode 'eager'"
    assert tf2_only_reason({"call": "function", "batch_size": 1}) == "call 'function'"
    assert tf2_only_reason({"mode": "graph", "call": "predict", "loop": "graph"}) is None


def test_settle_only_nulls_what_the_other_values_make_meaningless() -> None:
    assert settle({"loop": "graph", "input": "tfdata", "epochs": 3}) == {
        "loop": "graph",
        "input": None,
        "epochs": 3,
    }
    assert settle({"loop": "fit", "input": "tfdata"}) == {"loop": "fit", "input": "tfdata"}
    assert settle({"input": "numpy"}) == {"input": "numpy"}  # mlp_fit: no loop, nothing to settle


def test_unused_parameters_are_null_in_the_spec(matrix) -> None:
    cell = _cells(matrix)["tf2.21-py3.11-cpu/call_overhead-predict/bs1"]
    assert "epochs" not in cell.params and cell.params["calls"] == PARAMS["calls"].default
    spec = build_spec(cell, "/data")
    for name in ("epochs", "train_samples", "eval_samples", "steps_per_epoch", "data", "loop", "input"):
        assert spec[name] is None, name
    assert (spec["call"], spec["batch_size"], spec["build_ops"]) == ("predict", 1, 300)


SEED_PROFILES = ("default", "measure", "seed", "ci", "gpu-nightly")


@pytest.mark.parametrize("profile", SEED_PROFILES)
def test_repo_seed_profiles_do_not_run_the_overhead_workloads(root: Path, profile: str) -> None:
    matrix = load_matrix(root / "matrix.yaml")
    workloads = {c.workload for c in expand(matrix, profile).cells}
    assert workloads and not workloads & {"tiny_fit", "call_overhead"}, workloads
