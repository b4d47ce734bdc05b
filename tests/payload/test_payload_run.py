"""Run the real payload as a subprocess in real TensorFlow interpreters.

Set TFMH_TF_PYTHONS to a comma-separated list of python executables that have TensorFlow installed, e.g.
    TFMH_TF_PYTHONS=/root/.cache/tf-matrix-harness/venvs/tf215/bin/python,\
/root/.cache/tf-matrix-harness/venvs/tf221/bin/python
Cells are CI-sized (2048 samples, batch 32, 2 epochs, warmup 5, window 10); each run happens once per
interpreter and is shared by the assertions below.
"""

import json
import math
import os
import re
import subprocess
import sys

import pytest
from conftest import PAYLOAD_DIR, tf_pythons
from test_payload_units import expected_windows

if os.environ.get("TFMH_REQUIRE_TF") == "1" and not tf_pythons():
    raise RuntimeError("TFMH_REQUIRE_TF=1 but no TF interpreter was given (TFMH_TF_PYTHONS[_FILE])")

pytestmark = [
    pytest.mark.tf,
    pytest.mark.skipif(
        not tf_pythons(), reason="TFMH_TF_PYTHONS is unset (comma-separated TF python interpreters)"
    ),
]

# A complete spec (the payload fills nothing in): each cell sets its workload and mode or input.
SMALL = {
    "spec_version": 1,
    "cell_id": "test",
    "workload": None,
    "mode": None,
    "input": None,
    "device": "cpu",
    "data": "synthetic",
    "data_dir": None,
    "batch_size": 32,
    "epochs": 2,
    "steps_per_epoch": None,
    "train_samples": 2048,
    "eval_samples": 512,
    "warmup_steps": 5,
    "window_steps": 10,
    "seed": 1234,
    "intra_op_threads": 2,
    "inter_op_threads": 1,
    "loop": None,
    "val_samples": None,
    "call": None,
    "calls": None,
    "build_ops": None,
}
CELLS = {
    "mlp_fit-numpy": {"workload": "mlp_fit", "input": "numpy"},
    "mlp_fit-tfdata": {"workload": "mlp_fit", "input": "tfdata"},
    "cnn_fit-numpy": {"workload": "cnn_fit", "input": "numpy"},
    "cnn_fit-tfdata": {"workload": "cnn_fit", "input": "tfdata"},
    "mlp_loop-graph": {"workload": "mlp_loop", "mode": "graph"},
    "mlp_loop-function": {"workload": "mlp_loop", "mode": "function"},
    "mlp_loop-eager": {"workload": "mlp_loop", "mode": "eager"},
}
API_STYLE = {
    "mlp_fit": "keras-fit",
    "cnn_fit": "keras-fit",
    "graph": "tf1-graph",
    "function": "tf2-function",
    "eager": "tf2-eager",
}
_CACHE = {}


def run_payload(python, spec, tmp_dir):
    key = (python, json.dumps(spec, sort_keys=True))
    if key not in _CACHE:
        name = re.sub(r"\W+", "_", key[1])[:80] + "_%d" % len(_CACHE)
        spec_path, out_path = tmp_dir / (name + ".spec.json"), tmp_dir / (name + ".out.json")
        spec_path.write_text(json.dumps(spec))
        proc = subprocess.run(
            [python, str(PAYLOAD_DIR / "run.py"), "--spec", str(spec_path), "--out", str(out_path)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        doc = json.loads(out_path.read_text()) if out_path.exists() else None
        _CACHE[key] = (proc, doc)
    return _CACHE[key]


def is_tf1(python, workdir):
    _, doc = run_payload(python, dict(SMALL, **CELLS["mlp_loop-graph"]), workdir)
    return doc["runtime"]["tf_version"].startswith("1.")


def assert_schema(validator, doc):
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]
    assert not errors, errors


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("python", tf_pythons())
def test_cell_result(python, cell, workdir, validator):
    spec = dict(SMALL, **CELLS[cell])
    proc, doc = run_payload(python, spec, workdir)
    assert doc is not None, proc.stderr[-3000:]
    assert_schema(validator, doc)
    if spec.get("mode") in ("function", "eager") and is_tf1(python, workdir):
        assert proc.returncode == 1 and doc["status"] == "failed"
        assert "needs TensorFlow 2.x" in doc["error"]["message"]
        return
    assert proc.returncode == 0 and doc["status"] == "ok", proc.stderr[-3000:]
    assert doc["api_style"] == API_STYLE[spec.get("mode") or spec["workload"]]
    steps_per_epoch = spec["train_samples"] // spec["batch_size"]
    steps = doc["steps"]
    assert steps["total_steps"] == steps_per_epoch * spec["epochs"]
    assert len(steps["step_time_s"]) == expected_windows(
        steps_per_epoch, spec["epochs"], spec["warmup_steps"], spec["window_steps"]
    )
    assert steps["steps_measured"] == len(steps["step_time_s"]) * spec["window_steps"]
    assert all(t > 0 for t in steps["step_time_s"])
    assert doc["throughput_samples_per_s"] > 0
    assert len(doc["epochs"]["epoch_time_s"]) == spec["epochs"]
    assert all(math.isfinite(v) for v in doc["epochs"]["loss"] + [doc["quality"]["eval_loss"]])
    assert doc["quality"]["eval_accuracy"] > 0.2  # chance is 0.1 on the learnable synthetic task
    for phase in ("import", "data", "build", "first_step", "train_total", "eval"):
        assert doc["phases_s"][phase] > 0, phase
    assert doc["phases_s"]["train_total"] >= sum(doc["epochs"]["epoch_time_s"]) * 0.99
    memory = doc["memory"]
    assert memory["host_peak_rss_bytes"] > 50 * 2**20
    assert memory["gpu_peak_bytes"] is None and memory["gpu_peak_api"] is None
    assert memory["gpu_peak_note"].startswith("not available: cpu cell")
    assert (
        doc["model"]["params"] > 0
        and doc["model"]["flops_per_sample_train"] == 3 * doc["model"]["flops_per_sample_forward"]
    )


@pytest.mark.parametrize("python", tf_pythons())
def test_runtime_provenance(python, workdir):
    _, doc = run_payload(python, dict(SMALL, **CELLS["mlp_loop-graph"]), workdir)
    runtime = doc["runtime"]
    packages = {k.lower().replace("_", "-"): v for k, v in runtime["packages"].items()}
    tf_dists = [v for k, v in packages.items() if k in ("tensorflow", "tensorflow-cpu", "tensorflow-gpu")]
    assert tf_dists and runtime["tf_version"] in [v.split("+")[0] for v in tf_dists]
    assert runtime["numpy_version"] == packages["numpy"]
    assert (runtime["intra_op_threads"], runtime["inter_op_threads"]) == (2, 1)
    assert runtime["gpu_devices"] == [] and runtime["cpu_count"] >= 1
    assert re.match(r"^[0-9a-f]{64}$", runtime["payload_sha256"])
    assert runtime["keras_version"] and runtime["tf_git_version"]
    if not runtime["tf_version"].startswith("1."):
        assert runtime["keras_version"].startswith("3." if runtime["tf_version"] >= "2.16" else "2.")
        # which Keras ran: the bundled `keras` package here (tf_keras only with TF_USE_LEGACY_KERAS=1)
        assert runtime["keras_package"] == "keras"
        assert runtime["keras_major"] == int(runtime["keras_version"].split(".")[0])
        assert "TF_USE_LEGACY_KERAS" in runtime["env"]


@pytest.mark.parametrize("python", tf_pythons())
def test_same_seed_same_initial_loss_across_modes(python, workdir):
    modes = ["mlp_loop-graph", "mlp_fit-numpy"] + (
        [] if is_tf1(python, workdir) else ["mlp_loop-function", "mlp_loop-eager"]
    )
    losses = {
        m: run_payload(python, dict(SMALL, **CELLS[m]), workdir)[1]["quality"]["initial_loss"] for m in modes
    }
    reference = losses["mlp_loop-graph"]
    assert 1.5 < reference < 3.5  # ~ln(10) for glorot weights
    for mode, loss in losses.items():
        assert loss == pytest.approx(reference, rel=1e-4), (mode, losses)


@pytest.mark.parametrize("python", tf_pythons())
def test_missing_mnist_fails_cleanly(python, workdir, validator):
    spec = dict(SMALL, workload="mlp_fit", input="numpy", data="mnist", data_dir=str(workdir / "no-such-dir"))
    proc, doc = run_payload(python, spec, workdir)
    assert proc.returncode == 1
    assert_schema(validator, doc)
    assert doc["status"] == "failed" and doc["error"]["type"] in ("OSError", "IOError")
    assert str(workdir / "no-such-dir" / "mnist.npz") in doc["error"]["message"]
    assert "Traceback" in doc["error"]["traceback"] and "data.py" in doc["error"]["traceback"]
    assert doc["finished_at"] and doc["memory"]["host_peak_rss_bytes"] > 0


@pytest.mark.parametrize("python", tf_pythons())
def test_gpu_requested_without_gpu_fails(python, workdir, validator):
    proc, doc = run_payload(python, dict(SMALL, workload="mlp_fit", input="numpy", device="gpu"), workdir)
    assert_schema(validator, doc)
    if doc["status"] == "ok":
        pytest.skip("this interpreter sees a GPU")
    assert proc.returncode == 1
    assert "device=gpu requested but TensorFlow" in doc["error"]["message"]
    assert "sees no GPU" in doc["error"]["message"]


def test_bad_spec_still_writes_result(workdir, validator):
    """Spec errors happen before TF is imported: any python (here the first TF one) reports them."""
    python = tf_pythons()[0] if tf_pythons() else sys.executable
    proc, doc = run_payload(python, dict(SMALL, workload="mlp_loop", mode="jit"), workdir)
    assert proc.returncode == 1 and doc["status"] == "failed" and doc["error"]["type"] == "SpecError"
    assert_schema(validator, doc)


_CALLBACK_PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import tensorflow as tf
import keras_fit, timing
cb = keras_fit.make_callback(tf, timing.WindowTimer(1, 1), timing.EpochRecorder(), {"first_step": None, "fit_start": 0.0})
CallbackList = getattr(tf.keras.callbacks, "CallbackList", None)
out = {"has_callback_list": CallbackList is not None}
if CallbackList is not None:
    plain, timed = CallbackList([], add_history=True), CallbackList([cb], add_history=True)
    for name in ("_async_train", "_batch_hooks_support_tf_logs"):
        out[name] = [getattr(plain, name, None), getattr(timed, name, None)]
print(json.dumps(out))
"""


@pytest.mark.parametrize("python", tf_pythons())
def test_mlp_fit_timing_callback_costs_what_the_default_progress_bar_costs(python):
    """The timed `fit` does per step what the seed's `model.fit(x, y, epochs, batch_size)` does with its
    default progress bar, on every Keras: the logs become Python numbers after every batch. Keras 2 does that
    for verbose=1 and for any batch-hook callback without `_supports_tf_logs` (ours declares False); on
    Keras 3 (TF backend) logs are pythonified every batch with or without callbacks, and instrumenting must
    not change the async-dispatch decision."""
    proc = subprocess.run(
        [python, "-c", _CALLBACK_PROBE, str(PAYLOAD_DIR)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if not out["has_callback_list"]:
        pytest.skip("tf.keras.callbacks.CallbackList not exported by this TF")
    plain_async, timed_async = out["_async_train"]
    assert plain_async == timed_async, out  # Keras 3: instrumenting keeps the dispatch mode
    _plain_tf_logs, timed_tf_logs = out["_batch_hooks_support_tf_logs"]
    assert timed_tf_logs in (None, False), out  # Keras 2: numpy logs every batch, like verbose=1
