"""Result-document IO for the payload (stdlib only; Python 3.6 grammar). The spec is cellspec.py's."""

import datetime
import json
import math
import os
import traceback

import cellspec

SCHEMA_VERSION = 2
API_STYLES = {"graph": "tf1-graph", "function": "tf2-function", "eager": "tf2-eager"}
#: call_overhead's eager calls; its Keras methods (predict, fit, train_on_batch) are keras-fit
CALL_STYLES = {"call": "tf2-eager", "function": "tf2-function"}


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def api_style(spec):
    workload = spec.get("workload")
    if workload == "mlp_loop":
        return API_STYLES.get(spec.get("mode"))
    if workload == "tiny_fit" and spec.get("loop") == "graph":
        return API_STYLES["graph"]
    if workload == "call_overhead" and spec.get("call") in CALL_STYLES:
        return CALL_STYLES[spec["call"]]
    return "keras-fit" if workload in cellspec.WORKLOADS else None


def new_result():
    """Result document with every key present; measurements fill it in as they happen."""
    return {
        "schema_version": SCHEMA_VERSION, "status": "failed", "cell_id": None, "spec": None,
        "api_style": None, "runtime": None,
        # fit_*: Keras fit workloads only; symbolic_build: call_overhead only
        "phases_s": dict.fromkeys(("interpreter", "import", "data", "build", "first_step", "train_total",
                                   "eval", "fit_total", "fit_tail", "symbolic_build")),
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
