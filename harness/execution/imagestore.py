"""`harness images`: the images the harness built here, and removing those the matrix no longer needs
(the logic is harness.images.inventory; this connects the engine and reads the matrix)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness import paths
from harness.images.build import cache_lock
from harness.images.inventory import (
    HarnessImage,
    Needed,
    PruneItem,
    harness_images,
    needed,
    prune,
    prune_candidates,
)
from harness.matrix.config import load_matrix

if TYPE_CHECKING:
    from harness.images.inventory import ImageEngine


@dataclass(frozen=True)
class PruneResult:
    """What the matrix no longer needs, what was removed, what could not be, and the matrix images whose
    tag is not known here (all their tags were kept)."""

    candidates: list[PruneItem]
    removed: list[PruneItem] = field(default_factory=list)
    failed: list[tuple[PruneItem, str]] = field(default_factory=list)
    kept_unknown: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def _engine(engine: ImageEngine | None) -> ImageEngine:
    if engine is not None:
        return engine
    from harness.execution.backends import connect_engine

    return connect_engine()


def list_images(cache_dir: Path, engine: ImageEngine | None = None) -> list[HarnessImage]:
    return harness_images(_engine(engine), cache_dir)


def prune_images(
    matrix_path: Path, cache_dir: Path, *, dry_run: bool, engine: ImageEngine | None = None
) -> PruneResult:
    """Remove (or with ``dry_run`` only name) the harness images no image of the matrix (any profile) gets
    today. A real prune holds the cache lock, so no image of another harness process is being made
    meanwhile (a dry run does not wait for it)."""
    matrix = load_matrix(matrix_path)
    eng = _engine(engine)

    def candidates() -> tuple[list[PruneItem], Needed]:
        need = needed(matrix.images.values(), eng, cache_dir, paths.docker_dir())
        return prune_candidates(harness_images(eng, cache_dir), need, matrix.images), need

    if dry_run:
        found, need = candidates()
        return PruneResult(found, kept_unknown=sorted(need.unknown_names))
    with cache_lock(cache_dir):
        found, need = candidates()
        removed, failed = prune(eng, found)
    return PruneResult(found, removed, failed, sorted(need.unknown_names))
