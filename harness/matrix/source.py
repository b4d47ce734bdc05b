"""The matrix file of one command, read once: its text and checksum (for the manifest and resume), the
validated matrix (images checked against the tested configurations), the profile's plan and the cells of
the shard."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.digest import text_sha256
from harness.matrix.config import Matrix, read_matrix
from harness.matrix.plan import Cell, Plan, expand, parse_shard, select_shard
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

    @property
    def profile(self) -> str:
        return self.plan.profile_name


def load_source(path: Path, profile: str, shard: str | None = None) -> MatrixSource:
    """Validate the matrix, the compatibility of every image and the shard: before anything is built."""
    matrix, text = read_matrix(path)
    check_matrix_images(matrix.images, load_table(), path)
    plan = expand(matrix, profile, str(path))
    cells = plan.cells
    if shard is not None:
        k, n = parse_shard(shard)
        cells = select_shard(cells, k, n)
    sha256 = text_sha256(text)
    return MatrixSource(path, text, sha256, matrix, plan, cells, shard)
