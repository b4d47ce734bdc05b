"""matrix.yaml: pydantic models, what a profile selects, and loading with every check done once -- error
messages name the file, the line, the field path and what was expected. The cell parameters themselves
(types, bounds, defaults) are the contract in harness/matrix/params.py."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import ConfigError
from harness.matrix.params import (
    Device,
    Workload,
    axis_product,
    check_entry,
    check_params,
    expand_axes,
    merge,
    settle,
)
from harness.matrix.problems import Loc, Problem, format_problems, line_for, pydantic_problems

NAME_RE = r"^[a-z0-9][a-z0-9._-]{0,62}$"


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
    #: which Keras tf.keras is: ``bundled`` (what the TF release ships: Keras 2 up to TF 2.15, Keras 3 from
    #: 2.16) or ``legacy`` (TF >= 2.16 with Keras 2: the matching ``tf_keras`` from docker/compat.yaml,
    #: installed beside TF, and TF_USE_LEGACY_KERAS=1 in the image's environment)
    keras: Literal["bundled", "legacy"] = "bundled"
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

    #: values checked against the contract by params.check_params (one message per bad key or axis value)
    params: dict[str, Any] = Field(default_factory=dict)


CPUSET_RE = r"^\d+(-\d+)?(,\d+(-\d+)?)*$"
#: a container memory limit: bytes, or a number with k, m or g
MEM_LIMIT_RE = r"^\d{1,15}[kmg]?$"
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
    return len(cpuset_cpus(cpuset))


def cpuset_cpus(cpuset: str) -> set[int]:
    """The CPUs of a cpuset list such as '0-1,4' (docker --cpuset-cpus syntax)."""
    if not re.match(CPUSET_RE, cpuset) or len(cpuset) > 200:
        raise ValueError(f"expected a CPU list such as 0-1 or 0,2, got {cpuset!r}")
    cpus: set[int] = set()
    for part in cpuset.split(","):
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if last < first:
            raise ValueError(f"cpuset {cpuset!r}: range {part!r} runs backwards")
        cpus.update(range(first, last + 1))
    return cpus


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
    images: Annotated[list[str], Field(min_length=1)] | None = None
    devices: Annotated[list[Device], Field(min_length=1)] | None = None
    workloads: Annotated[list[Workload], Field(min_length=1)] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    repeats: Annotated[int, Field(ge=1, le=100)] = 3
    #: per-execution timeout: more than 0 s, at most a week
    timeout_s: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] = 1800.0
    cpus: Annotated[float, Field(gt=0, le=1024)] | None = None
    mem_limit: Annotated[str, Field(pattern=MEM_LIMIT_RE)] | None = None
    include: list[dict[str, Any]] = Field(default_factory=list)
    exclude: list[dict[str, Any]] = Field(default_factory=list)
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
    """The whole matrix.yaml. Structure only: load_matrix adds the parameter table and cross-field
    checks (references, include/exclude, selections, cell count)."""

    version: Literal[1]
    baseline: str | None = None
    images: Annotated[dict[str, ImageSpec], Field(min_length=1)]
    workloads: Annotated[dict[Workload, WorkloadSpec], Field(min_length=1)]
    defaults: dict[str, Any] = Field(default_factory=dict)
    profiles: Annotated[dict[str, Profile], Field(min_length=1)]

    @field_validator("images", mode="before")
    @classmethod
    def _name_images(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ({**v, "name": k} if isinstance(v, dict) else v) for k, v in value.items()}
        return value


# ------------------------------------------------------------------------------------- parameters, cells


def raw_problems(data: dict[Any, Any]) -> list[Problem]:
    """Parameter problems found in the raw document (before the structural validation)."""
    problems: list[Problem] = []
    if isinstance(data.get("defaults"), dict):
        problems += check_params(data["defaults"], ("defaults",))
    workloads = data.get("workloads")
    if isinstance(workloads, dict):
        for name, spec in workloads.items():
            if isinstance(spec, dict) and isinstance(spec.get("params"), dict):
                problems += check_params(spec["params"], ("workloads", str(name), "params"), str(name))
    profiles = data.get("profiles")
    if isinstance(profiles, dict):
        for pname, prof in profiles.items():
            if not isinstance(prof, dict):
                continue
            if isinstance(prof.get("params"), dict):
                problems += check_params(prof["params"], ("profiles", str(pname), "params"))
            for kind in ("include", "exclude"):
                entries = prof.get(kind)
                for i, entry in enumerate(entries if isinstance(entries, list) else []):
                    if isinstance(entry, dict):
                        problems += check_entry(entry, ("profiles", str(pname), kind, str(i)), kind)
    return problems


def merged_params(matrix: Matrix, profile: Profile, workload: str) -> dict[str, Any]:
    """Built-in defaults < matrix defaults < workload params < profile params (relevant ones only)."""
    layers = (matrix.defaults, matrix.workloads[workload].params, profile.params)  # type: ignore[index]
    return merge(workload, *layers)


def _selection(matrix: Matrix, profile: Profile) -> Iterator[tuple[ImageSpec, str]]:
    for name in profile.images or list(matrix.images):
        image = matrix.images.get(name)
        if image is None:
            continue
        for device in image.devices:
            if profile.devices is None or device in profile.devices:
                yield image, device


def count_cells(matrix: Matrix, profile: Profile) -> int:
    """How many cells the profile can have at most (before exclude; includes counted), computed from
    the axis sizes without expanding anything."""
    workloads = [w for w in (profile.workloads or list(matrix.workloads)) if w in matrix.workloads]
    per_pair = sum(axis_product(merged_params(matrix, profile, w)) for w in workloads)
    return sum(per_pair for _ in _selection(matrix, profile)) + len(profile.include)


def entry_matches(entry: dict[str, Any], values: dict[str, Any]) -> bool:
    return all(key in values and values[key] == want for key, want in entry.items())


def iter_cells(matrix: Matrix, profile: Profile) -> Iterator[tuple[ImageSpec, str, str, dict[str, Any]]]:
    """(image, device, workload, params) of every selected, not excluded combination."""
    workloads = [w for w in (profile.workloads or list(matrix.workloads)) if w in matrix.workloads]
    for image, device in _selection(matrix, profile):
        for workload in workloads:
            for params in map(settle, expand_axes(merged_params(matrix, profile, workload))):
                selector = {"image": image.name, "device": device, "workload": workload, **params}
                if not any(entry_matches(e, selector) for e in profile.exclude):
                    yield image, device, workload, params


def max_cells() -> int:
    from harness.matrix.yamlload import env_limit

    return env_limit("TFMH_MAX_CELLS", 10_000)


def selection_problem(matrix: Matrix, pname: str) -> str | None:
    """Why profile `pname` cannot be planned: it selects no cell, or more than TFMH_MAX_CELLS."""
    profile = matrix.profiles[pname]
    count = count_cells(matrix, profile)
    limit = max_cells()
    if count > limit:
        return (
            f"selects {count:,} cells (images x devices x workloads x parameter axes), more than "
            f"the limit of {limit:,}; expected fewer axis values (or raise TFMH_MAX_CELLS)"
        )
    if count == 0:
        return "selects no cells (no image of the selection has a selected device, or no workload)"
    if not profile.include and next(iter_cells(matrix, profile), None) is None:
        return "selects no cells: every cell is excluded; expected at least one"
    return None


def cross_problems(matrix: Matrix) -> list[Problem]:
    """References between the parts of a structurally valid matrix, and every profile's selection."""
    problems: list[Problem] = []
    have = ", ".join(matrix.images)
    if matrix.baseline is not None and matrix.baseline not in matrix.images:
        problems.append((("baseline",), f"{matrix.baseline!r} is not an image (have: {have})"))
    for pname, prof in matrix.profiles.items():
        loc: Loc = ("profiles", pname)
        for i, img in enumerate(prof.images or []):
            if img not in matrix.images:
                problems.append(((*loc, "images", str(i)), f"{img!r} is not an image (have: {have})"))
        for i, wl in enumerate(prof.workloads or []):
            if wl not in matrix.workloads:
                problems.append(((*loc, "workloads", str(i)), f"{wl!r} is not declared under workloads"))
        for kind in ("include", "exclude"):
            for i, entry in enumerate(getattr(prof, kind)):
                problems += _entry_references(matrix, entry, (*loc, kind, str(i)), kind)
        if not problems:
            why = selection_problem(matrix, pname)
            if why:
                problems.append((loc, why))
    return problems


def _entry_references(matrix: Matrix, entry: dict[str, Any], loc: Loc, kind: str) -> list[Problem]:
    problems: list[Problem] = []
    image = matrix.images.get(entry["image"]) if isinstance(entry.get("image"), str) else None
    if "image" in entry and image is None:
        problems.append(
            ((*loc, "image"), f"{entry['image']!r} is not an image (have: {', '.join(matrix.images)})")
        )
    if "workload" in entry and entry["workload"] not in matrix.workloads:
        problems.append(((*loc, "workload"), f"{entry['workload']!r} is not declared under workloads"))
    if kind == "include" and image is not None and entry.get("device") not in image.devices:
        problems.append(
            (
                (*loc, "device"),
                f"image {image.name} declares devices {image.devices}, not {entry.get('device')!r}",
            )
        )
    return problems


# ----------------------------------------------------------------------------------------------- loading


def load_matrix(path: Path) -> Matrix:
    """Read and validate a matrix file. Raises ConfigError (exit 2) naming file, line and field."""
    return read_matrix(path)[0]


def read_matrix(path: Path) -> tuple[Matrix, str]:
    """``load_matrix``, and the text it read (the file is read once)."""
    from harness.matrix.yamlload import load_yaml

    data, positions, text = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}:1: (top level): expected a mapping with keys version, images, workloads, profiles"
        )
    problems = raw_problems(data)
    matrix: Matrix | None = None
    try:
        matrix = Matrix.model_validate(data)
    except ValidationError as exc:
        problems += pydantic_problems(exc)
    if matrix is not None and not problems:
        problems = cross_problems(matrix)
    if problems:
        problems.sort(key=lambda p: line_for(positions, p[0]) or 0)
        raise ConfigError(format_problems(path, positions, problems))
    assert matrix is not None
    return matrix, text
