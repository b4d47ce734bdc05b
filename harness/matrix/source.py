"""The matrix file of one command, read once: its text and checksum (for the manifest and resume), the
validated matrix (images checked against the tested configurations), the profile's plan and the cells of
the shard. ``--param KEY=VALUE`` values go on top of the profile's parameters (and its include entries')
before the cells are expanded, so a run at another size is the same profile with its cells' parameters
changed, recorded in the manifest and required again to resume it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.digest import text_sha256
from harness.errors import ConfigError
from harness.matrix.config import Matrix, Profile, read_matrix
from harness.matrix.params import PARAMS, parse_assignments
from harness.matrix.plan import Cell, Plan, expand, get_profile, parse_shard, select_shard
from harness.matrix.testedconfigs import check_matrix_images, load_table


@dataclass(frozen=True)
class MatrixSource:
    path: Path
    text: str
    sha256: str
    matrix: Matrix
    plan: Plan
    #: the cells of the shard (all of the profile's without one)
    cells: list[Cell]
    shard: str | None = None
    #: ``--param`` values laid over the profile's parameters ({}: none)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def profile(self) -> str:
        return self.plan.profile_name


def load_source(
    path: Path, profile: str, shard: str | None = None, params: Sequence[str] = ()
) -> MatrixSource:
    """Validate the matrix, the compatibility of every image, the ``--param`` values and the shard: before
    anything is built."""
    matrix, text = read_matrix(path)
    check_matrix_images(matrix.images, load_table(), path)
    overrides = parse_assignments(params)
    plan = expand(matrix, profile, str(path))
    if overrides:
        changed = _with_params(matrix, profile, overrides, str(path))
        # cell ids keep naming the axes the values collapsed, so the cells match the profile's own
        before, plan = plan, expand(changed, profile, str(path), frozenset(plan.axis_keys))
        _check_reach(before, plan, overrides)
        matrix = changed
    cells = plan.cells
    if shard is not None:
        k, n = parse_shard(shard)
        cells = select_shard(cells, k, n)
    sha256 = text_sha256(text)
    return MatrixSource(path, text, sha256, matrix, plan, cells, shard, overrides)


def _with_params(matrix: Matrix, name: str, overrides: dict[str, Any], source: str) -> Matrix:
    """The matrix with profile `name`'s parameters (and its include entries' values) replaced by
    `overrides`; a parameter none of the profile's workloads uses is an error, not silently ignored."""
    profile = get_profile(matrix, name, source)
    workloads = [
        *(profile.workloads or list(matrix.workloads)),
        *(str(e["workload"]) for e in profile.include),
    ]
    workloads = list(dict.fromkeys(workloads))
    for key in overrides:
        if not any(PARAMS[key].used_by(w) for w in workloads):
            raise ConfigError(
                f"--param {key}: no workload of profile {name!r} uses it (its workloads: "
                f"{', '.join(workloads)}; {key} applies to {', '.join(PARAMS[key].workloads)})"
            )
    include = [{**e, **{k: v for k, v in overrides.items() if k in e}} for e in profile.include]
    params = {**profile.params, **overrides}
    changed: Profile = profile.model_copy(update={"params": params, "include": include})
    return matrix.model_copy(update={"profiles": {**matrix.profiles, name: changed}})


def _check_reach(before: Plan, after: Plan, overrides: dict[str, Any]) -> None:
    """A value that reaches no cell (the profile's exclude entries drop every cell it applies to) would
    silently run nothing of what was asked: an error naming it."""
    for key, value in overrides.items():
        uses = PARAMS[key].used_by
        if any(uses(c.workload) for c in before.cells) and not any(uses(c.workload) for c in after.cells):
            raise ConfigError(
                f"--param {key}={value}: profile {after.profile_name!r} excludes every cell it applies to "
                "(see its exclude entries)"
            )
