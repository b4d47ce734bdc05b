"""The overhead workloads in real TensorFlow interpreters (TF 2.15 = Keras 2, TF 2.21 = Keras 3): tiny_fit
(Keras fit with numpy / tf.data, the TF1-style graph loop) and call_overhead (one cell per kind of call),
at tiny sizes; each cell runs once per interpreter and is shared by the assertions below."""

import math

import pytest
from conftest import tf_pythons
from test_payload_run import assert_schema, run_payload
from test_payload_units import COMPLETE

pytestmark = [pytest.mark.tf, pytest.mark.skipif(not tf_pythons(), reason="no TF interpreter given")]

# A complete spec (the payload fills nothing in): the unit tests' one, without what these workloads leave
# null; each cell sets its workload's parameters.
BASE = dict(COMPLETE, cell_id="overhead", workload=None, mode=None, data=None, batch_size=10, epochs=None,
            train_samples=None, eval_samples=None, warmup_steps=3, window_steps=5)  # fmt: skip
TINY = dict(BASE, workload="tiny_fit", epochs=24, train_samples=10, val_samples=10)
TINY_CELLS = {
    "fit-numpy": dict(TINY, loop="fit", input="numpy"),
    "fit-tfdata": dict(TINY, loop="fit", input="tfdata"),
    "graph": dict(TINY, loop="graph"),
    # three steps per epoch (the last one partial), no validation
    "fit-numpy-noval": dict(TINY, loop="fit", input="numpy", epochs=8, train_samples=25, val_samples=0),
    "graph-noval": dict(TINY, loop="graph", epochs=8, train_samples=25, val_samples=0),
}
CALL = dict(BASE, workload="call_overhead", batch_size=2, calls=12, build_ops=20)
CALLS = ("predict", "call", "function", "fit", "train_on_batch")
TRAINS = ("fit", "train_on_batch")
TF2_ONLY = ("call", "function")


def finished(python, spec, workdir, validator):
    proc, doc = run_payload(python, spec, workdir)
    assert doc is not None, proc.stderr[-3000:]
    assert_schema(validator, doc)
    return proc, doc


def ok(python, spec, workdir, validator):
    proc, doc = finished(python, spec, workdir, validator)
    assert proc.returncode == 0 and doc["status"] == "ok", proc.stderr[-3000:]
    return doc


def tf1(doc):
    return doc["runtime"]["tf_version"].startswith("1.")


@pytest.mark.parametrize("cell", sorted(TINY_CELLS))
@pytest.mark.parametrize("python", tf_pythons())
def test_tiny_fit(python, cell, workdir, validator):
    spec = TINY_CELLS[cell]
    doc = ok(python, spec, workdir, validator)
    graph = spec["loop"] == "graph"
    assert doc["api_style"] == ("tf1-graph" if graph else "keras-fit")
    per_epoch = -(-spec["train_samples"] // spec["batch_size"])
    steps = doc["steps"]
    assert steps["steps_per_epoch"] == per_epoch and steps["total_steps"] == per_epoch * spec["epochs"]
    # windows run on across epochs: the first opens at the warm-up's end, then one per window_steps steps
    expected = (steps["total_steps"] - spec["warmup_steps"]) // spec["window_steps"]
    assert len(steps["step_time_s"]) == len(steps["cpu_time_s"]) == expected > 0
    assert steps["steps_measured"] == expected * spec["window_steps"]
    assert all(t > 0 for t in steps["step_time_s"])
    assert len(doc["epochs"]["epoch_time_s"]) == len(doc["epochs"]["loss"]) == spec["epochs"]
    assert doc["epochs"]["accuracy"] == [None] * spec["epochs"]  # a regression
    quality = doc["quality"]
    assert all(math.isfinite(v) for v in doc["epochs"]["loss"] + [quality["eval_loss"]])
    assert quality["final_loss"] < quality["initial_loss"]  # it trains
    assert quality["final_accuracy"] is None and quality["eval_accuracy"] is None
    phases = doc["phases_s"]
    for phase in ("data", "build", "first_step", "train_total", "eval"):
        assert phases[phase] > 0, phase
    assert (phases["fit_total"] is None) == (phases["fit_tail"] is None) == graph
    assert phases["symbolic_build"] is None
    assert doc["model"]["params"] == 13  # the 1-D regression of tensorflow#57645


@pytest.mark.parametrize("python", tf_pythons())
def test_tiny_fit_loops_start_from_the_same_model(python, workdir, validator):
    """Same seed, same weights and data: the Keras and the graph loop start at the same loss."""
    losses = {c: ok(python, TINY_CELLS[c], workdir, validator)["quality"]["initial_loss"] for c in TINY_CELLS}
    for cell, loss in losses.items():
        reference = losses["graph-noval" if cell.endswith("-noval") else "graph"]
        assert loss == pytest.approx(reference, rel=1e-4), (cell, losses)
    assert losses["graph"] != pytest.approx(losses["graph-noval"], rel=1e-4)  # other data, other loss


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("python", tf_pythons())
def test_call_overhead(python, call, workdir, validator):
    spec = dict(CALL, call=call)
    proc, doc = finished(python, spec, workdir, validator)
    if call in TF2_ONLY and doc["runtime"] and tf1(doc):
        assert proc.returncode == 1 and "needs TensorFlow 2.x" in doc["error"]["message"]
        return
    assert proc.returncode == 0 and doc["status"] == "ok", proc.stderr[-3000:]
    assert doc["api_style"] == {"call": "tf2-eager", "function": "tf2-function"}.get(call, "keras-fit")
    steps = doc["steps"]
    assert steps["total_steps"] == spec["warmup_steps"] + spec["calls"]
    assert len(steps["step_time_s"]) == len(steps["cpu_time_s"]) == spec["calls"] // spec["window_steps"]
    assert steps["steps_measured"] == len(steps["step_time_s"]) * spec["window_steps"]
    assert all(t > 0 for t in steps["step_time_s"])  # seconds per call
    assert doc["throughput_samples_per_s"] > 0
    assert doc["epochs"] == {"epoch_time_s": [], "loss": [], "accuracy": []}
    phases = doc["phases_s"]
    for phase in ("build", "symbolic_build", "first_step", "train_total", "eval"):
        assert phases[phase] > 0, phase
    assert phases["fit_total"] is None
    assert phases["train_total"] >= sum(steps["step_time_s"]) * spec["window_steps"]
    quality = doc["quality"]
    assert quality["final_loss"] == quality["eval_loss"] and math.isfinite(quality["final_loss"])
    if call in TRAINS:  # the training calls change the weights, the others leave them as they were
        assert quality["final_loss"] != pytest.approx(quality["initial_loss"], rel=1e-6)
    else:
        assert quality["final_loss"] == pytest.approx(quality["initial_loss"], rel=1e-6)


@pytest.mark.parametrize("python", tf_pythons())
def test_call_overhead_without_symbolic_build(python, workdir, validator):
    doc = ok(python, dict(CALL, call="train_on_batch", build_ops=0), workdir, validator)
    assert doc["phases_s"]["symbolic_build"] is None and doc["phases_s"]["build"] > 0


@pytest.mark.parametrize("python", tf_pythons())
def test_call_overhead_needs_a_full_window(python, workdir, validator):
    proc, doc = finished(python, dict(CALL, call="predict", calls=4, window_steps=5), workdir, validator)
    assert proc.returncode == 1 and doc["status"] == "failed"
    assert "calls=4 is fewer than window_steps=5" in doc["error"]["message"]
