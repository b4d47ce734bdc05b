"""Spec loading/validation and result-document IO for the payload (stdlib only; Python 3.6 grammar)."""

import datetime
import json
import math
import os
import traceback

SCHEMA_VERSION = 2
SPEC_VERSION = 1
WORKLOADS = ("mlp_fit", "mlp_loop", "cnn_fit")
MODES = ("graph", "function", "eager")
INPUTS = ("numpy", "tfdata")
API_STYLES = {"graph": "tf1-graph", "function": "tf2-function", "eager": "tf2-eager"}

DEFAULTS = {
    "cell_id": None, "workload": "mlp_fit", "mode": None, "input": "numpy", "device": "cpu",
    "data": "synthetic", "data_dir": None, "batch_size": 32, "epochs": 5, "steps_per_epoch": None,
    "train_samples": 60000, "eval_samples": 10000, "warmup_steps": 20, "window_steps": 50, "seed": 1234,
    "intra_op_threads": 2, "inter_op_threads": 1,
}
POSITIVE_INTS = ("batch_size", "epochs", "train_samples", "eval_samples", "window_steps")
NON_NEGATIVE_INTS = ("warmup_steps", "seed", "intra_op_threads", "inter_op_threads")


class SpecError(ValueError):
    """The cell spec is malformed or asks for an unsupported combination."""


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def load_spec(path):
    with open(path) as f:
        raw = json.load(f)
    return validate_spec(raw)


def _check_int(spec, key, minimum):
    value = spec[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError("spec.%s must be an integer >= %d, got %r" % (key, minimum, value))


def _check_choice(spec, key, choices):
    if spec[key] not in choices:
        raise SpecError("spec.%s must be one of %s, got %r" % (key, "|".join(choices), spec[key]))


def validate_spec(raw):
    if not isinstance(raw, dict):
        raise SpecError("spec must be a JSON object")
    if raw.get("spec_version") != SPEC_VERSION:
        raise SpecError("spec_version must be %d, got %r" % (SPEC_VERSION, raw.get("spec_version")))
    spec = dict(DEFAULTS)
    spec.update(raw)
    _check_choice(spec, "workload", WORKLOADS)
    _check_choice(spec, "device", ("cpu", "gpu"))
    _check_choice(spec, "data", ("synthetic", "mnist"))
    for key in POSITIVE_INTS:
        _check_int(spec, key, 1)
    for key in NON_NEGATIVE_INTS:
        _check_int(spec, key, 0)
    if spec["steps_per_epoch"] is not None:
        _check_int(spec, "steps_per_epoch", 1)
    if spec["workload"] == "mlp_loop":
        _check_choice(spec, "mode", MODES)
    elif spec["mode"] is not None:
        raise SpecError("spec.mode applies to mlp_loop only; %s needs mode null" % spec["workload"])
    if spec["workload"] != "mlp_loop":
        _check_choice(spec, "input", INPUTS)
    if spec["data"] == "mnist" and not spec["data_dir"]:
        raise SpecError("data=mnist needs spec.data_dir (directory holding mnist.npz)")
    return spec


def api_style(spec):
    if spec.get("workload") == "mlp_loop":
        return API_STYLES.get(spec.get("mode"))
    return "keras-fit" if spec.get("workload") in WORKLOADS else None


def new_result():
    """Result document with every key present; measurements fill it in as they happen."""
    return {
        "schema_version": SCHEMA_VERSION, "status": "failed", "cell_id": None, "spec": None,
        "api_style": None, "runtime": None,
        "phases_s": dict.fromkeys(("interpreter", "import", "data", "build", "first_step", "train_total",
                                   "eval", "fit_total", "fit_tail")),  # fit_*: keras-fit workloads only
        "steps": {"warmup_steps": None, "window_steps": None, "step_time_s": [], "cpu_time_s": [],
                  "steps_measured": 0,
                  "total_steps": 0, "steps_per_epoch": None},
        "epochs": {"epoch_time_s": [], "loss": [], "accuracy": []},
        "throughput_samples_per_s": None,
        "quality": {"initial_loss": None, "final_loss": None, "final_accuracy": None, "eval_loss": None,
                    "eval_accuracy": None},
        "memory": {"host_peak_rss_bytes": None, "gpu_peak_bytes": None, "gpu_peak_api": None,
                   "gpu_peak_note": "not available: the run stopped before the GPU probe"},
        "model": {"params": None, "flops_per_sample_forward": None, "flops_per_sample_train": None},
        "error": None, "started_at": utc_now(), "finished_at": None,
    }


def error_doc(exc):
    return {"type": type(exc).__name__, "message": str(exc) or repr(exc),
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def _json_default(value):
    """numpy scalars and other number-likes -> plain Python numbers."""
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _finite(value):
    """JSON has no NaN/Infinity: non-finite floats (e.g. a diverged loss) become null."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()  # numpy scalars and arrays -> Python numbers / lists
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def write_atomic(path, doc):
    """Write JSON to a temp file in the target directory, fsync, then os.replace onto path."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, ".%s.tmp.%d" % (os.path.basename(path), os.getpid()))
    try:
        with open(tmp, "w") as f:
            json.dump(_finite(doc), f, indent=2, sort_keys=True, default=_json_default, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
