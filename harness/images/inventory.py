"""What the harness has built in the engine (``harness images``) and what the matrix no longer needs
(``harness images prune``).

An image is the harness's when it carries the ``tfmh=1`` label and is tagged ``tfmh/…`` (the TF images and
the bootstrap bases); nothing else is listed or removed. "Last used" comes from a small index in the cache
that the docker backend updates whenever it starts a container from an image.

An image is still needed when its tag is the one an image of the matrix (any profile) gets today, or it is
the bootstrap base (or builder base) of such an image. The tag is recomputed from what is already here (base
in the engine, wheel lock in the cache), nothing is downloaded; when an image's tag cannot be known that way
(no lock yet), every tag of that image name is kept.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness import cachedirs
from harness.atomicfile import write_text
from harness.errors import EngineError
from harness.filelock import locked
from harness.images.bootstrap import builder_recipe_for, recipe_for
from harness.images.enginespec import HARNESS_LABEL, HARNESS_LABEL_VALUE, ImageInfo, split_ref
from harness.images.imageplan import known_plan
from harness.matrix.config import BootstrapBase, ImageSpec
from harness.timestamps import utc_iso

#: only tags in this namespace are ever listed or removed
TAG_PREFIX = "tfmh/"
IMAGE_LABEL = "tfmh.image"
TF_LABEL = "tfmh.tf"
AS_OF_LABEL = "tfmh.wheels_as_of"


class ImageEngine(Protocol):
    """What the inventory needs of the engine (harness.images.engine.DockerEngine has it)."""

    def list_images(self, label_filter: Mapping[str, str]) -> list[ImageInfo]: ...

    def image_id(self, tag: str) -> str | None: ...

    def remove_image(self, tag: str) -> bool: ...


@dataclass(frozen=True)
class HarnessImage:
    """One tag the harness built: a TF image (``name`` = its matrix name) or a bootstrap base."""

    tag: str
    name: str
    tf: str
    size: int
    created: float
    last_used: str | None
    image_id: str
    wheels_as_of: str = ""


@dataclass(frozen=True)
class PruneItem:
    image: HarnessImage
    why: str


# ---------------------------------------------------------------------------------------------- use index


def record_use(cache_dir: Path, tag: str, when: float | None = None) -> None:
    """Note that a container was started from ``tag`` (best effort: never fails the execution)."""
    path = cachedirs.image_uses(cache_dir)
    with contextlib.suppress(OSError), locked(path.with_suffix(".lock")):
        uses = read_uses(cache_dir)
        uses[tag] = utc_iso(time.time() if when is None else when)
        write_text(path, json.dumps(uses, indent=1, sort_keys=True) + "\n")


def read_uses(cache_dir: Path) -> dict[str, str]:
    """tag -> when a container was last started from it (ISO 8601, UTC)."""
    try:
        doc = json.loads(cachedirs.image_uses(cache_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}


# ------------------------------------------------------------------------------------------------ listing


def harness_images(engine: ImageEngine, cache_dir: Path) -> list[HarnessImage]:
    """Every ``tfmh/…`` tag with the harness label, sorted by image name then tag."""
    uses = read_uses(cache_dir)
    found = []
    for info in engine.list_images({HARNESS_LABEL: HARNESS_LABEL_VALUE}):
        for tag in info.tags:
            if not tag.startswith(TAG_PREFIX):
                continue
            repo = split_ref(tag)[0]
            found.append(
                HarnessImage(
                    tag=tag,
                    name=info.labels.get(IMAGE_LABEL) or repo.removeprefix(TAG_PREFIX),
                    tf=info.labels.get(TF_LABEL, ""),
                    size=info.size,
                    created=info.created,
                    last_used=uses.get(tag),
                    image_id=info.image_id,
                    wheels_as_of=info.labels.get(AS_OF_LABEL, ""),
                )
            )
    return sorted(found, key=lambda i: (i.name, i.tag))


# ------------------------------------------------------------------------------------------------ pruning


@dataclass(frozen=True)
class Needed:
    """What the matrix needs: exact tags, and image names whose tag cannot be known here (keep them all)."""

    tags: frozenset[str]
    unknown_names: frozenset[str]


def needed(specs: Iterable[ImageSpec], engine: ImageEngine, cache_dir: Path, docker_dir: Path) -> Needed:
    tags: set[str] = set()
    unknown: set[str] = set()
    for spec in specs:
        if isinstance(spec.base, BootstrapBase):
            tags |= {recipe_for(spec.base).ref, builder_recipe_for(spec.base).ref}
        plan = known_plan(spec, engine, cache_dir, docker_dir)  # type: ignore[arg-type]
        if plan is None:
            unknown.add(spec.name)
        else:
            tags.add(plan.tag)
    return Needed(frozenset(tags), frozenset(unknown))


def prune_candidates(
    images: Iterable[HarnessImage], need: Needed, matrix_names: Iterable[str]
) -> list[PruneItem]:
    """The harness images the matrix no longer produces, each with the reason."""
    names = set(matrix_names)
    out = []
    for image in images:
        if image.tag in need.tags or image.name in need.unknown_names:
            continue
        why = "an older build of a matrix image" if image.name in names else "not an image of the matrix"
        out.append(PruneItem(image, why))
    return out


def prune(
    engine: ImageEngine, items: Iterable[PruneItem]
) -> tuple[list[PruneItem], list[tuple[PruneItem, str]]]:
    """Remove the tags (layers go when nothing else uses them): (removed, [(not removed, why)]). An image a
    container still uses is not removed (the engine refuses)."""
    removed: list[PruneItem] = []
    failed: list[tuple[PruneItem, str]] = []
    for item in items:
        try:
            if engine.remove_image(item.image.tag):
                removed.append(item)
        except EngineError as exc:
            failed.append((item, str(exc)))
    return removed, failed
