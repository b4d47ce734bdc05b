"""matrix.yaml: pydantic models, safe YAML loading with line numbers, and error messages that name
the file, the line, the field path and what was expected."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from harness.errors import ConfigError

NAME_RE = r"^[a-z0-9][a-z0-9._-]{0,62}$"
Device = Literal["cpu", "gpu"]
Workload = Literal["mlp_fit", "mlp_loop", "cnn_fit"]
ParamValue = int | float | str | bool | None

#: Parameters the payload understands (docs/contracts.md, cell spec). Axis keys for `params` lists.
KNOWN_PARAMS: frozenset[str] = frozenset(
    {
        "mode",
        "input",
        "data",
        "batch_size",
        "epochs",
        "steps_per_epoch",
        "train_samples",
        "eval_samples",
        "warmup_steps",
        "window_steps",
        "seed",
        "intra_op_threads",
        "inter_op_threads",
    }
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BootstrapBase(Strict):
    """A base root filesystem made locally from a Debian mirror (debootstrap + import)."""

    kind: Literal["bootstrap"]
    suite: Literal["bookworm", "bullseye"] = "bookworm"
    mirror: str = "http://deb.debian.org/debian"


class RegistryBase(Strict):
    """FROM an image in a registry (official TF or NVIDIA CUDA images)."""

    kind: Literal["registry"]
    image: Annotated[str, Field(min_length=1)]
    #: the interpreter inside the base image
    python_bin: str = "python3"


BaseSpec = Annotated[BootstrapBase | RegistryBase, Field(discriminator="kind")]


class ImageSpec(Strict):
    """One image of the matrix: a TF package on a Python on a base, optionally with CUDA/cuDNN."""

    name: Annotated[str, Field(pattern=NAME_RE)] = ""
    tf: Annotated[str, Field(pattern=r"^\d+\.\d+(\.\d+)?$")]
    package: Annotated[str, Field(min_length=1)]
    python: Annotated[str, Field(pattern=r"^3\.\d+$")]
    cuda: Annotated[str, Field(pattern=r"^\d+\.\d+$")] | None = None
    cudnn: Annotated[str, Field(pattern=r"^\d+(\.\d+)?$")] | None = None
    base: BaseSpec
    devices: list[Device] = Field(default_factory=lambda: list[Device](["cpu"]), min_length=1)
    #: extra pip requirement specs installed beside the TF package (from the wheelhouse)
    extra_packages: list[str] = Field(default_factory=list)
    #: opt out of the tested-build-configuration check (docker/compat.yaml)
    allow_untested: bool = False

    @property
    def tf_major(self) -> int:
        return int(self.tf.split(".")[0])

    @property
    def tf_minor(self) -> str:
        return ".".join(self.tf.split(".")[:2])


class WorkloadSpec(Strict):
    """A workload and its parameter axes: a list value is an axis, a scalar a fixed value."""

    params: dict[str, ParamValue | list[ParamValue]] = Field(default_factory=dict)

    @field_validator("params")
    @classmethod
    def _known_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_param_keys(value)


CPUSET_RE = r"^\d+(-\d+)?(,\d+(-\d+)?)*$"
_DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_duration(text: str | float | int) -> float:
    """Seconds from '90', '90s', '30m', '1h30m' (ValueError otherwise)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        raw = str(text).strip().lower()
        match = _DURATION_RE.match(raw) if raw else None
        if raw.replace(".", "", 1).isdigit():
            seconds = float(raw)
        elif match and any(match.groups()):
            h, m, sec = (float(x) if x else 0.0 for x in match.groups())
            seconds = h * 3600 + m * 60 + sec
        else:
            raise ValueError(f"{text!r} is not a duration (examples: 90s, 30m, 1h30m)")
    if not 0 < seconds <= 7 * 24 * 3600:
        raise ValueError(f"{text!r}: a duration must be more than 0 s and at most 7 days")
    return seconds


def cpuset_size(cpuset: str) -> int:
    """Number of CPUs in a cpuset list such as '0-1,4'."""
    if not re.match(CPUSET_RE, cpuset) or len(cpuset) > 200:
        raise ValueError(f"expected a CPU list such as 0-1 or 0,2, got {cpuset!r}")
    cpus: set[int] = set()
    for part in cpuset.split(","):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if last < first:
            raise ValueError(f"cpuset {cpuset!r}: range {part!r} runs backwards")
        cpus.update(range(first, last + 1))
    return len(cpus)


class QuietGate(Strict):
    """How quiet the host must be for a measurement to count. `threshold` is the share of the host's cores
    that other processes may use (0.15 on 2 cores: 0.3 cores)."""

    threshold: Annotated[float, Field(gt=0, le=1)] = 0.15
    steal_pct: Annotated[float, Field(ge=0, le=100)] = 5.0
    #: wait at most this long before each execution for the host to become quiet (0: do not wait)
    wait_s: Annotated[float, Field(ge=0, le=3600)] = 120.0
    #: re-run a contended execution at most this many times
    reruns: Annotated[int, Field(ge=0, le=10)] = 2


class Profile(Strict):
    """A named selection: which images/devices/workloads, parameter overrides, repeats, timeouts."""

    description: str = ""
    images: list[str] | None = None
    devices: list[Device] | None = None
    workloads: list[Workload] | None = None
    params: dict[str, ParamValue | list[ParamValue]] = Field(default_factory=dict)
    repeats: Annotated[int, Field(ge=1, le=100)] = 3
    timeout_s: Annotated[float, Field(gt=0)] = 1800.0
    cpus: Annotated[float, Field(gt=0)] | None = None
    mem_limit: Annotated[str, Field(pattern=r"^\d+[kmg]?$")] | None = None
    include: list[dict[str, ParamValue]] = Field(default_factory=list)
    exclude: list[dict[str, ParamValue]] = Field(default_factory=list)
    #: pin every container to these CPUs (docker --cpuset-cpus); thread counts follow the pinned count
    cpuset: Annotated[str, Field(pattern=CPUSET_RE)] | None = None
    quiet: QuietGate = QuietGate()
    #: practical-equivalence margin of verdicts, percent
    margin_pct: Annotated[float, Field(gt=0, le=50)] = 3.0
    #: adaptive repeats: add rounds for pairs whose ratio CI half-width is above this (percent)
    target_ci_pct: Annotated[float, Field(gt=0, le=100)] | None = None
    max_repeats: Annotated[int, Field(ge=1, le=100)] | None = None
    #: wall-time budget for the adaptive rounds, e.g. "30m"
    budget: str | None = None
    #: run the calibration probe before, between and after rounds
    probe: bool = True

    @field_validator("params")
    @classmethod
    def _known_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_param_keys(value)

    @field_validator("budget")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("cpuset")
    @classmethod
    def _cpuset(cls, value: str | None) -> str | None:
        if value is not None:
            cpuset_size(value)
        return value


class Matrix(Strict):
    """The whole matrix.yaml."""

    version: Literal[1]
    baseline: str | None = None
    images: dict[str, ImageSpec]
    workloads: dict[Workload, WorkloadSpec]
    defaults: dict[str, ParamValue | list[ParamValue]] = Field(default_factory=dict)
    profiles: dict[str, Profile]

    @field_validator("images", mode="before")
    @classmethod
    def _name_images(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({**v, "name": k} if isinstance(v, dict) else v) for k, v in value.items()}
        return value

    @field_validator("defaults")
    @classmethod
    def _known_defaults(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_param_keys(value)

    @model_validator(mode="after")
    def _references(self) -> Matrix:
        for key in self.images:
            if not re.match(NAME_RE, key):
                raise ValueError(f"images.{key}: image names must match {NAME_RE}")
        if self.baseline is not None and self.baseline not in self.images:
            raise ValueError(f"baseline: {self.baseline!r} is not an image (have: {', '.join(self.images)})")
        for pname, prof in self.profiles.items():
            for img in prof.images or []:
                if img not in self.images:
                    raise ValueError(
                        f"profiles.{pname}.images: {img!r} is not an image (have: {', '.join(self.images)})"
                    )
            for wl in prof.workloads or []:
                if wl not in self.workloads:
                    raise ValueError(f"profiles.{pname}.workloads: {wl!r} is not declared under workloads")
        return self


def _check_param_keys(value: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(value) - KNOWN_PARAMS)
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; expected some of {sorted(KNOWN_PARAMS)}")
    return value


# ----------------------------------------------------------------------------------------------- loading


class _LineLoader(yaml.SafeLoader):
    """Safe loader that remembers the line of every mapping key, keyed by field path."""


def _compose_positions(text: str) -> dict[tuple[str, ...], int]:
    positions: dict[tuple[str, ...], int] = {}
    node = yaml.compose(text, Loader=_LineLoader)

    def walk(n: yaml.Node, path: tuple[str, ...]) -> None:
        positions.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for key, val in n.value:
                kpath = (*path, str(key.value))
                positions[kpath] = key.start_mark.line + 1
                walk(val, kpath)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*path, str(i)))

    if node is not None:
        walk(node, ())
    return positions


def _line_for(positions: dict[tuple[str, ...], int], loc: tuple[str, ...]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in positions:
            return positions[loc[:end]]
    return None


def _format_validation(path: Path, text: str, err: ValidationError) -> str:
    positions = _compose_positions(text)
    lines = [f"{path}: invalid matrix ({err.error_count()} error(s)):"]
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"] if not str(p).startswith("function-after"))
        loc = tuple(p for p in loc if p not in {"bootstrap", "registry"} or p == loc[-1])
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
        if len(loc) == 3 and loc[0] == "images" and loc[2] == "name":
            loc = loc[:2]  # the name is the mapping key the user wrote
        field = ".".join(loc) or "(top level)"
        line = _line_for(positions, loc)
        where = f"{path}:{line}" if line else str(path)
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not allowed here)"
        elif e["type"] == "missing":
            msg = "required field is missing"
        elif e["type"] == "string_pattern_mismatch":
            msg = f"expected a string matching {e['ctx']['pattern']}, got {e['input']!r}"
        lines.append(f"  {where}: {field}: {msg}")
    return "\n".join(lines)


def load_matrix(path: Path) -> Matrix:
    """Read and validate a matrix file. Raises ConfigError (exit 2) naming file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read matrix file: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:1: (top level): expected a mapping with keys version, images, workloads, profiles"
        )
    try:
        return Matrix.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(path, text, exc)) from exc


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
