"""The cell spec (docs/contracts.md section 1): read it and CHECK it -- never fill it in (Python 3.6 grammar).

The host writes every key (harness/params.py is the parameter contract; this table mirrors the part of it
the payload needs, and tests/unit/test_param_contract.py asserts that the two agree). A spec that misses a
key, carries an unknown one or holds a value outside the table is refused with a SpecError naming the key.
"""

import json

SPEC_VERSION = 1
WORKLOADS = ("mlp_fit", "mlp_loop", "cnn_fit", "tiny_fit", "call_overhead")
_EPOCHS = ("mlp_fit", "mlp_loop", "cnn_fit", "tiny_fit")
_DATASET = ("mlp_fit", "mlp_loop", "cnn_fit")
DEVICES = ("cpu", "gpu")
#: keys of a spec besides the parameters
FIELDS = ("spec_version", "cell_id", "workload", "device", "data_dir")
#: parameter -> its rule: "choices" (allowed strings) or "minimum"/"maximum" (an integer), "nullable",
#: "workloads" (the workloads that use it; the others get null), "unused_when" ((key, value) pairs under
#: which it is null too)
PARAMS = {
    "mode": {"choices": ("graph", "function", "eager"), "workloads": ("mlp_loop",)},
    "input": {"choices": ("numpy", "tfdata"), "workloads": ("mlp_fit", "cnn_fit", "tiny_fit"),
              "unused_when": (("loop", "graph"),)},
    "data": {"choices": ("synthetic", "mnist"), "workloads": _DATASET},
    "batch_size": {"minimum": 1, "maximum": 65536},
    "epochs": {"minimum": 1, "maximum": 10000, "workloads": _EPOCHS},
    "steps_per_epoch": {"minimum": 1, "maximum": 100000000, "nullable": True, "workloads": _DATASET},
    "train_samples": {"minimum": 1, "maximum": 100000000, "workloads": _EPOCHS},
    "eval_samples": {"minimum": 1, "maximum": 100000000, "workloads": _DATASET},
    "warmup_steps": {"minimum": 0, "maximum": 1000000},
    "window_steps": {"minimum": 1, "maximum": 1000000},
    "seed": {"minimum": 0, "maximum": 2147483647},
    "intra_op_threads": {"minimum": 0, "maximum": 1024},
    "inter_op_threads": {"minimum": 0, "maximum": 1024},
    "loop": {"choices": ("fit", "graph"), "workloads": ("tiny_fit",)},
    "val_samples": {"minimum": 0, "maximum": 100000000, "workloads": ("tiny_fit",)},
    "call": {"choices": ("predict", "call", "function", "fit", "train_on_batch"), "workloads": ("call_overhead",)},
    "calls": {"minimum": 1, "maximum": 1000000, "workloads": ("call_overhead",)},
    "build_ops": {"minimum": 0, "maximum": 1000000, "workloads": ("call_overhead",)},
}


class SpecError(ValueError):
    """The cell spec is malformed or asks for an unsupported combination."""


def load_spec(path):
    with open(path) as f:
        raw = json.load(f)
    return check_spec(raw)


def _problem(key, rule, value):
    """Why `value` is not valid for parameter `key` (None: valid)."""
    if value is None and rule.get("nullable"):
        return None
    if "choices" in rule:
        if value in rule["choices"]:
            return None
        return "spec.%s must be one of %s, got %r" % (key, "|".join(rule["choices"]), value)
    if isinstance(value, int) and not isinstance(value, bool) and rule["minimum"] <= value <= rule["maximum"]:
        return None
    return "spec.%s must be an integer from %d to %d%s, got %r" % (
        key, rule["minimum"], rule["maximum"], " or null" if rule.get("nullable") else "", value)


def _check_keys(raw):
    keys = FIELDS + tuple(PARAMS)
    missing = [k for k in keys if k not in raw]
    if missing:
        raise SpecError("incomplete spec: missing %s (the host writes every key; the payload fills none in)"
                        % ", ".join(missing))
    unknown = sorted(str(k) for k in raw if k not in keys)
    if unknown:
        raise SpecError("unknown spec key(s) %s; expected only %s" % (", ".join(unknown), ", ".join(keys)))


def _check_fields(spec):
    if spec["workload"] not in WORKLOADS:
        raise SpecError("spec.workload must be one of %s, got %r" % ("|".join(WORKLOADS), spec["workload"]))
    if spec["device"] not in DEVICES:
        raise SpecError("spec.device must be one of %s, got %r" % ("|".join(DEVICES), spec["device"]))
    if not isinstance(spec["cell_id"], str) or not spec["cell_id"]:
        raise SpecError("spec.cell_id must be a non-empty string, got %r" % (spec["cell_id"],))
    if spec["data_dir"] is not None and not isinstance(spec["data_dir"], str):
        raise SpecError("spec.data_dir must be a string or null, got %r" % (spec["data_dir"],))


def check_spec(raw):
    """The spec itself when it is complete and valid; SpecError otherwise."""
    if not isinstance(raw, dict):
        raise SpecError("spec must be a JSON object")
    if raw.get("spec_version") != SPEC_VERSION:
        raise SpecError("spec_version must be %d, got %r" % (SPEC_VERSION, raw.get("spec_version")))
    _check_keys(raw)
    _check_fields(raw)
    for key, rule in PARAMS.items():
        users = rule.get("workloads")
        if users and raw["workload"] not in users:
            if raw[key] is not None:
                raise SpecError("spec.%s applies to %s only; %s needs %s null"
                                % (key, "/".join(users), raw["workload"], key))
            continue
        unused = [(k, v) for k, v in rule.get("unused_when", ()) if raw.get(k) == v]
        if unused:
            if raw[key] is not None:
                raise SpecError("spec.%s means nothing when %s=%s; it must be null"
                                % (key, unused[0][0], unused[0][1]))
            continue
        why = _problem(key, rule, raw[key])
        if why:
            raise SpecError(why)
    if raw["data"] == "mnist" and not raw["data_dir"]:
        raise SpecError("data=mnist needs spec.data_dir (directory holding mnist.npz)")
    return raw
