"""Expand a matrix profile into cells: images x devices x workloads x parameter axes, with
include/exclude, deterministic readable cell IDs and deterministic sharding."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from harness.errors import ConfigError
from harness.matrix.config import ImageSpec, Matrix, Profile, iter_cells, merged_params
from harness.matrix.params import SELECTOR_KEYS, ParamValue, expand_axes, settle, tf2_only_reason

#: parameters named in the middle of a cell ID (the workload's variant), in this order
VARIANT_KEYS = ("mode", "loop", "call", "input")


@dataclass(frozen=True)
class Cell:
    """One benchmark configuration: an image, a device, a workload and every payload parameter."""

    cell_id: str
    image: ImageSpec
    device: str
    workload: str
    params: dict[str, Any]
    available: bool = True
    reason: str | None = None
    #: status recorded for a cell that does not run: unavailable, or failed (its image did not build)
    skip_status: str = "unavailable"
    #: the full text behind `reason` (raw engine error, build log tail): the record's log_tail
    detail: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "cell_id": self.cell_id,
            "image": self.image.name,
            "device": self.device,
            "workload": self.workload,
            "params": dict(self.params),
            "available": self.available,
            "reason": self.reason,
        }

    def unavailable(self, reason: str, status: str = "unavailable", detail: str | None = None) -> Cell:
        return replace(self, available=False, reason=reason, skip_status=status, detail=detail)


@dataclass(frozen=True)
class Plan:
    profile_name: str
    profile: Profile
    cells: list[Cell]
    baseline: str | None
    axis_keys: tuple[str, ...] = field(default=())

    @property
    def images(self) -> list[ImageSpec]:
        seen: dict[str, ImageSpec] = {}
        for cell in self.cells:
            seen.setdefault(cell.image.name, cell.image)
        return list(seen.values())


def get_profile(matrix: Matrix, name: str, source: str) -> Profile:
    if name not in matrix.profiles:
        raise ConfigError(f"{source}: profiles.{name}: no such profile (have: {', '.join(matrix.profiles)})")
    return matrix.profiles[name]


def make_cell_id(image: str, device: str, workload: str, params: dict[str, Any], axis_keys: set[str]) -> str:
    """Readable, deterministic: `tf2.15-py3.11-cpu/mlp_loop-graph/bs32` (+ other varying axes)."""
    middle = [workload]
    for key in VARIANT_KEYS:
        if params.get(key) is not None:
            middle.append(str(params[key]))
    if params.get("data") not in (None, "synthetic"):
        middle.append(str(params["data"]))
    tail = [f"bs{params['batch_size']}"]
    for key in sorted(axis_keys - {*VARIANT_KEYS, "data", "batch_size"}):
        if key in params:
            tail.append(f"{key}={params[key]}")
    return f"{image}-{device}/{'-'.join(middle)}/{','.join(tail)}"


def _axis_keys(matrix: Matrix, profile: Profile) -> set[str]:
    """The parameters with more than one value somewhere in the matrix or profile: named in cell ids."""
    keys = {k for k, v in matrix.defaults.items() if isinstance(v, list)}
    for wl in matrix.workloads.values():
        keys |= {k for k, v in wl.params.items() if isinstance(v, list)}
    keys |= {k for k, v in profile.params.items() if isinstance(v, list)}
    return keys


def _tf1_reason(image: ImageSpec, params: dict[str, Any]) -> str | None:
    needs_tf2 = tf2_only_reason(params) if image.tf_major < 2 else None
    if needs_tf2:
        return f"unsupported: {needs_tf2} needs TF 2.x (image {image.name} has TF {image.tf})"
    return None


def expand(
    matrix: Matrix, profile_name: str, source: str = "matrix.yaml", keep_axes: frozenset[str] = frozenset()
) -> Plan:
    """All cells of a profile, sorted by cell ID. Cells TF 1.x cannot run are kept, marked unavailable.
    The matrix comes from load_matrix, which checked every parameter, include entry and every profile's
    selection (cell count) once: nothing is re-checked here."""
    profile = get_profile(matrix, profile_name, source)
    axis_keys = _axis_keys(matrix, profile) | keep_axes  # keep_axes: axes a --param collapsed
    cells: dict[str, Cell] = {}
    for image, device, workload, params in iter_cells(matrix, profile):
        _add_cell(cells, image, device, workload, params, axis_keys)
    for entry in profile.include:
        _include(cells, matrix, profile, entry, axis_keys)
    ordered = [cells[k] for k in sorted(cells)]
    return Plan(profile_name, profile, ordered, _baseline(matrix, ordered), tuple(sorted(axis_keys)))


def _add_cell(
    cells: dict[str, Cell],
    image: ImageSpec,
    device: str,
    workload: str,
    params: dict[str, Any],
    axes: set[str],
) -> None:
    params = settle(params)
    cell_id = make_cell_id(image.name, device, workload, params, axes)
    cell = Cell(cell_id, image, device, workload, params)
    reason = _tf1_reason(image, params)
    cells[cell_id] = cell.unavailable(reason) if reason else cell


def _include(
    cells: dict[str, Cell],
    matrix: Matrix,
    profile: Profile,
    entry: dict[str, ParamValue],
    axes: set[str],
) -> None:
    """One include entry: the first combination of the workload's axes with the entry's values on top."""
    name, device, workload = str(entry["image"]), str(entry["device"]), str(entry["workload"])
    params = next(expand_axes(merged_params(matrix, profile, workload)))
    fixed = {k: v for k, v in entry.items() if k not in SELECTOR_KEYS}
    _add_cell(cells, matrix.images[name], device, workload, {**params, **fixed}, axes | set(fixed))


def _baseline(matrix: Matrix, cells: list[Cell]) -> str | None:
    if matrix.baseline:
        return matrix.baseline
    tf1 = [c.image.name for c in cells if c.image.tf_major < 2]
    return tf1[0] if tf1 else (cells[0].image.name if cells else None)


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' with 1 <= K <= N."""
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise ConfigError(f"--shard: expected K/N (e.g. 2/4), got {text!r}") from None
    if not 1 <= k <= n:
        raise ConfigError(f"--shard: expected 1 <= K <= N, got {text!r}")
    return k, n


def select_shard(cells: list[Cell], k: int, n: int) -> list[Cell]:
    """Shard K of N: round-robin over the cells sorted by ID, so shards differ in size by at most one
    and every cell lands in exactly one shard."""
    ordered = sorted(cells, key=lambda c: c.cell_id)
    return [c for i, c in enumerate(ordered) if i % n == k - 1]
