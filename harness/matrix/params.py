"""The cell-parameter contract: ONE table of every parameter a cell spec carries -- its type, bounds or
allowed values, default, meaning and the workloads that use it -- and how a matrix file writes parameters
(a single value, or a list of values: an axis).

The host derives from it: the matrix checks (once, when the file is loaded), the merged parameters of a
cell and the spec sent to the payload. The places that cannot import it are tested against it
(tests/unit/test_param_contract.py): the payload's spec checker (harness/payload/cellspec.py), the JSON
Schemas' spec parts, matrix.yaml and the parameter table of docs/contracts.md.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from harness.errors import ConfigError
from harness.matrix.problems import Loc, Problem, short

Workload = Literal["mlp_fit", "mlp_loop", "cnn_fit", "tiny_fit", "call_overhead"]
Device = Literal["cpu", "gpu"]
WORKLOADS: tuple[str, ...] = get_args(Workload)
DEVICES: tuple[str, ...] = get_args(Device)
ParamValue = int | float | str | bool | None
#: workloads whose raw samples time one call each, not a training step: their rate is calls/s, not samples/s
PER_CALL_WORKLOADS: tuple[str, ...] = ("call_overhead",)
#: keys of a cell spec besides the parameters (docs/contracts.md section 1)
SPEC_FIELDS = ("spec_version", "cell_id", "workload", "device", "data_dir")
#: keys of include/exclude entries besides the parameters
SELECTOR_KEYS = ("image", "device", "workload")
#: largest number of values of one axis
MAX_AXIS_VALUES = 1000


@dataclass(frozen=True)
class ParamSpec:
    """One cell parameter: its type and bounds (or choices), its default and what it means."""

    name: str
    kind: Literal["int", "choice"]
    default: ParamValue
    description: str
    minimum: int = 0
    maximum: int = 0
    choices: tuple[str, ...] = ()
    nullable: bool = False
    #: the workloads the parameter means something for (empty: all)
    workloads: tuple[str, ...] = ()
    #: (parameter, value) pairs under which this parameter means nothing: the cell carries it as null, so
    #: cells that differ only in it collapse into one (tiny_fit's `input` under loop=graph)
    unused_when: tuple[tuple[str, str], ...] = ()
    #: choices that need TF 2.x (eager or tf.function): cells with them are unavailable on TF 1.x images
    tf2_only: tuple[str, ...] = ()

    def used_by(self, workload: str) -> bool:
        return not self.workloads or workload in self.workloads

    def unused_in(self, params: Mapping[str, Any]) -> bool:
        """The cell's other parameters make this one meaningless (see `unused_when`)."""
        return any(params.get(key) == value for key, value in self.unused_when)

    @property
    def expected(self) -> str:
        if self.kind == "choice":
            text = " or ".join(repr(c) for c in self.choices)
        else:
            text = f"an integer from {self.minimum} to {self.maximum}"
        return f"{text} or null" if self.nullable else text

    def check(self, value: Any) -> str | None:
        """Why `value` is not valid for this parameter (None: valid)."""
        if value is None and self.nullable:
            return None
        if self.kind == "choice":
            ok = isinstance(value, str) and value in self.choices
        else:
            ok = (
                isinstance(value, int)
                and not isinstance(value, bool)
                and self.minimum <= value <= self.maximum
            )
        return None if ok else f"expected {self.expected}, got {short(value)}"


_BIG = 100_000_000
#: workloads that train for epochs over a training set
_EPOCHS = ("mlp_fit", "mlp_loop", "cnn_fit", "tiny_fit")
#: workloads that read the dataset (synthetic or mnist) and evaluate on it
_DATASET = ("mlp_fit", "mlp_loop", "cnn_fit")
#: Every cell parameter, in the order docs/contracts.md lists them.
PARAMS: dict[str, ParamSpec] = {
    p.name: p
    for p in (
        ParamSpec(
            "mode",
            "choice",
            "graph",
            "mlp_loop style: TF1 graph+Session, tf.function or eager",
            choices=("graph", "function", "eager"),
            workloads=("mlp_loop",),
            tf2_only=("function", "eager"),
        ),
        ParamSpec(
            "input",
            "choice",
            "numpy",
            "input pipeline of the Keras fit workloads (tiny_fit loop=graph: null, it feeds numpy)",
            choices=("numpy", "tfdata"),
            workloads=("mlp_fit", "cnn_fit", "tiny_fit"),
            unused_when=(("loop", "graph"),),
        ),
        ParamSpec(
            "data",
            "choice",
            "synthetic",
            "synthetic data or mnist.npz from --data-dir",
            choices=("synthetic", "mnist"),
            workloads=_DATASET,
        ),
        ParamSpec("batch_size", "int", 32, "samples per step (call_overhead: rows per call)", 1, 65_536),
        ParamSpec("epochs", "int", 5, "training epochs", 1, 10_000, workloads=_EPOCHS),
        ParamSpec(
            "steps_per_epoch",
            "int",
            None,
            "step budget per epoch (null: a full pass over train_samples)",
            1,
            _BIG,
            nullable=True,
            workloads=_DATASET,
        ),
        ParamSpec("train_samples", "int", 60000, "training samples", 1, _BIG, workloads=_EPOCHS),
        ParamSpec("eval_samples", "int", 10000, "evaluation samples", 1, _BIG, workloads=_DATASET),
        ParamSpec(
            "warmup_steps",
            "int",
            50,
            "steps excluded from the steady state (call_overhead: calls)",
            0,
            1_000_000,
        ),
        ParamSpec(
            "window_steps",
            "int",
            100,
            "steps per steady-state sample (one window; call_overhead: calls)",
            1,
            1_000_000,
        ),
        ParamSpec("seed", "int", 1234, "random seed", 0, 2**31 - 1),
        ParamSpec("intra_op_threads", "int", 2, "TF intra-op threads (0: TF decides)", 0, 1024),
        ParamSpec("inter_op_threads", "int", 1, "TF inter-op threads (0: TF decides)", 0, 1024),
        ParamSpec(
            "loop",
            "choice",
            "fit",
            "tiny_fit training loop: Keras fit or a TF1-style graph+Session loop",
            choices=("fit", "graph"),
            workloads=("tiny_fit",),
        ),
        ParamSpec(
            "val_samples",
            "int",
            10,
            "validation samples evaluated after every epoch (0: no validation)",
            0,
            _BIG,
            workloads=("tiny_fit",),
        ),
        ParamSpec(
            "call",
            "choice",
            "predict",
            "the call timed: model.predict(x), model(x), a tf.function of model(x), fit(epochs=1) or "
            "train_on_batch",
            choices=("predict", "call", "function", "fit", "train_on_batch"),
            workloads=("call_overhead",),
            tf2_only=("call", "function"),
        ),
        ParamSpec(
            "calls",
            "int",
            200,
            "timed calls (after warmup_steps untimed ones)",
            1,
            1_000_000,
            workloads=("call_overhead",),
        ),
        ParamSpec(
            "build_ops",
            "int",
            300,
            "symbolic ops added to a functional model in the symbolic_build phase (0: skip)",
            0,
            1_000_000,
            workloads=("call_overhead",),
        ),
    )
}


# ------------------------------------------------------------------------------ values of a cell


def defaults(workload: str) -> dict[str, ParamValue]:
    """Built-in defaults of the parameters that mean something for `workload`."""
    return {p.name: p.default for p in PARAMS.values() if p.used_by(workload)}


def merge(workload: str, *layers: Mapping[str, Any]) -> dict[str, Any]:
    """Built-in defaults < each layer in turn, keeping only the parameters `workload` uses."""
    merged: dict[str, Any] = defaults(workload)
    for layer in layers:
        merged.update({k: v for k, v in layer.items() if k in merged})
    return merged


def settle(params: Mapping[str, Any]) -> dict[str, Any]:
    """One combination of values with the parameters its other values make meaningless set to null
    (ParamSpec.unused_when): cells that differ only in those collapse into one cell ID."""
    return {k: None if k in PARAMS and PARAMS[k].unused_in(params) else v for k, v in params.items()}


def spec_params(workload: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter, as a cell spec carries them: the cell's value, or null where `workload` does not
    use the parameter or the cell's other values make it meaningless (the payload refuses a spec that
    misses one)."""
    settled = settle(params)
    return {name: settled[name] if p.used_by(workload) else None for name, p in PARAMS.items()}


def tf2_only_reason(params: Mapping[str, Any]) -> str | None:
    """The first parameter value of a cell that needs TF 2.x, as 'mode \'eager\'' (None: runs on 1.x)."""
    for name, p in PARAMS.items():
        if params.get(name) in p.tf2_only:
            return f"{name} {params[name]!r}"
    return None


def expand_axes(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every combination of the axes (list values), keys sorted."""
    keys = sorted(params)
    values = [v if isinstance(v, list) else [v] for v in (params[k] for k in keys)]
    for combo in itertools.product(*values):
        yield dict(zip(keys, combo, strict=True))


def axis_product(params: dict[str, Any]) -> int:
    """How many combinations expand_axes yields, without expanding."""
    total = 1
    for value in params.values():
        total *= len(value) if isinstance(value, list) else 1
    return total


# ------------------------------------------------------------------------ checks (on load only)


def check_params(params: dict[Any, Any], loc: Loc, workload: str | None = None) -> list[Problem]:
    """Problems of a `params`/`defaults` mapping: unknown keys, values outside the PARAMS table, empty or
    repeated axis values. `workload`: the params belong to that workload (workload-only parameters)."""
    problems: list[Problem] = []
    for key, value in params.items():
        where = (*loc, str(key))
        spec = PARAMS.get(key) if isinstance(key, str) else None
        if spec is None:
            problems.append(
                (where, f"unknown parameter {key!r}; expected one of {', '.join(sorted(PARAMS))}")
            )
        elif workload is not None and not spec.used_by(workload):
            problems.append((where, f"parameter {key!r} applies only to {', '.join(spec.workloads)}"))
        elif isinstance(value, dict):
            problems.append((where, f"expected {spec.expected} or a list of them (an axis), got a mapping"))
        elif isinstance(value, list):
            problems += _axis_problems(spec, value, where)
        else:
            why = spec.check(value)
            if why:
                problems.append((where, why))
    return problems


def _axis_problems(spec: ParamSpec, values: list[Any], where: Loc) -> list[Problem]:
    if not values:
        return [(where, f"an axis needs at least one value; expected a list of {spec.expected}")]
    if len(values) > MAX_AXIS_VALUES:
        return [(where, f"an axis of {len(values)} values; expected at most {MAX_AXIS_VALUES}")]
    problems: list[Problem] = []
    seen: set[Any] = set()
    for i, item in enumerate(values):
        why = spec.check(item)
        if why:
            problems.append(((*where, str(i)), why))
        elif (type(item), item) in seen:
            problems.append(
                ((*where, str(i)), f"{item!r} is listed twice in this axis; expected distinct values")
            )
        else:
            seen.add((type(item), item))
    return problems


def check_entry(entry: dict[Any, Any], loc: Loc, kind: str) -> list[Problem]:
    """Keys and values of one include/exclude entry: selectors and single parameter values (references to
    images and workloads are checked once the matrix parsed)."""
    if not entry:
        what = "would match every cell" if kind == "exclude" else "needs image, device and workload"
        return [(loc, f"empty {kind} entry {what}")]
    problems: list[Problem] = []
    if kind == "include":
        missing = [k for k in SELECTOR_KEYS if k not in entry]
        if missing:
            problems.append(
                (loc, f"include entry needs keys {', '.join(missing)} (a cell is image x device x workload)")
            )
    workload = entry.get("workload") if entry.get("workload") in WORKLOADS else None
    for key, value in entry.items():
        where = (*loc, str(key))
        if key in SELECTOR_KEYS:
            problems += _selector_problems(str(key), value, where)
            continue
        spec = PARAMS.get(key) if isinstance(key, str) else None
        if spec is None:
            problems.append(
                (
                    where,
                    f"unknown key {key!r}; expected image, device, workload or a parameter "
                    f"({', '.join(sorted(PARAMS))})",
                )
            )
        elif workload is not None and not spec.used_by(workload):
            problems.append(
                (where, f"parameter {key!r} applies only to {', '.join(spec.workloads)}, not {workload}")
            )
        else:
            why = spec.check(value)
            if why:
                extra = " (one value per key in an entry)" if isinstance(value, list) else ""
                problems.append((where, why + extra))
    return problems


def _selector_problems(key: str, value: Any, where: Loc) -> list[Problem]:
    choices = {"device": DEVICES, "workload": WORKLOADS}.get(key)
    if isinstance(value, str) and (not choices or value in choices):
        return []
    expected = " or ".join(repr(c) for c in choices) if choices else "an image name"
    return [(where, f"expected {expected}, got {short(value)}")]


# ------------------------------------------------------------------------ command-line values


def parse_value(text: str) -> ParamValue:
    """A command-line parameter value: a decimal integer (leading zeros and all: never octal, hex or
    YAML's sexagesimal), ``null``, or the text itself (a choice)."""
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    return None if text == "null" else text


def format_assignments(params: Mapping[str, Any]) -> str:
    """``--param KEY=VALUE ...`` as `parse_assignments` reads it back ("" for none)."""
    return " ".join(f"--param {k}={'null' if v is None else v}" for k, v in sorted(params.items()))


def parse_assignments(given: Sequence[str], workload: str | None = None) -> dict[str, Any]:
    """``--param KEY=VALUE`` values (`harness run`, `plan`, `bisect`): each value read by `parse_value`
    and checked against the table, one value per key, each key once (no axes); `workload`: only
    parameters it uses. Anything else is a ConfigError naming the option and the key."""
    out: dict[str, Any] = {}
    for text in given:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--param {text!r}: expected KEY=VALUE (e.g. input=numpy)")
        if key in out:
            raise ConfigError(f"--param {key}: given twice ({out[key]!r} and {raw.strip()!r}); give it once")
        if raw.strip().startswith("["):
            raise ConfigError(f"--param {key}: expected one value, got a list")
        out[key] = parse_value(raw)
    problems = check_params(out, ("--param",), workload)
    if problems:
        loc, why = problems[0]
        raise ConfigError(f"--param {loc[-1]}: {why}")
    return out
