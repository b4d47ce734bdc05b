"""Make the images of a matrix available: bootstrap base → wheelhouse lock → content-addressed build
(the plan and the tag: harness.images.imageplan). An existing tag means "already built, nothing to do".
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from harness import cachedirs, paths
from harness.errors import BuildError, EngineError
from harness.filelock import locked
from harness.images.engine import DockerEngine
from harness.images.enginespec import HARNESS_LABEL, HARNESS_LABEL_VALUE
from harness.images.imageplan import (
    KERAS_LEGACY_WHEELS,
    BuildEvents,
    ImagePlan,
    ImageStatus,
    OnLog,
    plan_image,
)
from harness.images.wheelhouse import fetch_locked, link_into
from harness.matrix.config import ImageSpec


def build_log_path(cache_dir: Path, name: str, digest: str) -> Path:
    return cachedirs.logs(cache_dir) / f"build-{name}-{digest}.log"


@contextlib.contextmanager
def cache_lock(cache_dir: Path) -> Iterator[None]:
    """Serialise image preparation between harness processes sharing one cache dir."""
    with locked(cachedirs.images_lock(cache_dir)):
        yield


def _prefixed(name: str, on_log: OnLog) -> OnLog:
    def emit(line: str) -> None:
        on_log(f"[{name}] {line}")

    return emit


def build_plan(plan: ImagePlan, engine: DockerEngine, cache_dir: Path, on_log: OnLog) -> str:
    """Assemble the context (Dockerfile + locked wheels) in a temp dir and build; returns the image ID."""
    fetch_locked(plan.lock, cache_dir, image=plan.name, on_log=on_log)
    if plan.keras_lock is not None:
        fetch_locked(plan.keras_lock, cache_dir, image=plan.name, on_log=on_log)
    tmp_root = cachedirs.build_contexts(cache_dir)
    tmp_root.mkdir(parents=True, exist_ok=True)
    ctx = Path(tempfile.mkdtemp(prefix=f"ctx-{plan.name}-", dir=tmp_root))
    try:
        (ctx / plan.dockerfile).write_text(plan.dockerfile_text, encoding="utf-8")
        link_into(plan.lock, cache_dir, ctx / "wheels")
        if plan.keras_lock is not None:
            link_into(plan.keras_lock, cache_dir, ctx / KERAS_LEGACY_WHEELS)
        return engine.build(
            ctx,
            plan.dockerfile,
            plan.tag,
            plan.buildargs,
            {},  # the Dockerfiles set the tfmh.* labels from the build args
            on_log,
            build_log_path(cache_dir, plan.name, plan.digest),
        )
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


def _size(engine: DockerEngine, tag: str) -> int | None:
    try:
        return engine.image_size(tag)
    except (AttributeError, EngineError):  # a test double without image_size, or the engine said no
        return None


def ensure_image(
    spec: ImageSpec,
    engine: DockerEngine,
    cache_dir: Path,
    on_log: OnLog,
    *,
    docker_dir: Path | None = None,
    extra_build_args: Mapping[str, str] | None = None,
    events: BuildEvents | None = None,
) -> ImageStatus:
    """One image (see ensure_images). Call it under ``cache_lock(cache_dir)``.

    After a build (ok or failed) the untagged images it leaves behind are removed (the ~1.5-2 GB venv stage
    of every bootstrap image; they carry ``tfmh=1`` inherited from the base). This trades disk for slower
    rebuilds of an image whose final stage alone changed.

    ``events`` hears the steps (base → wheels → build) and the outcome; ``on_log`` gets every log line (they
    also go to files under ``cachedirs.logs(cache_dir)``)."""
    ev = events or BuildEvents()
    log = _prefixed(spec.name, on_log)
    try:
        plan = plan_image(
            spec, engine, cache_dir, log, docker_dir or paths.docker_dir(), extra_build_args, ev
        )
    except BuildError as exc:
        ev.failed(spec.name, str(exc))
        raise
    if isinstance(plan, ImageStatus):
        ev.done(spec.name, plan)
        return plan
    existing = engine.image_id(plan.tag)
    if existing is not None:
        status = ImageStatus(spec.name, True, plan.tag, existing)
        ev.done(spec.name, status, _size(engine, plan.tag) if events is not None else None)
        return status
    ev.step(spec.name, "build", plan.tag)
    log(f"building {plan.tag}")
    try:
        image_id = build_plan(plan, engine, cache_dir, log)
    except BuildError as exc:
        error = BuildError(f"image {spec.name}: {exc}")
        ev.failed(spec.name, str(error))
        raise error from exc
    finally:
        freed = engine.prune_dangling_images({HARNESS_LABEL: HARNESS_LABEL_VALUE})
        log(f"pruned untagged build stages: {freed / 1e9:.2f} GB freed")
    status = ImageStatus(spec.name, True, plan.tag, image_id, built=True)
    ev.done(spec.name, status, _size(engine, plan.tag) if events is not None else None)
    return status


def ensure_images(
    specs: list[ImageSpec],
    engine: DockerEngine,
    cache_dir: Path,
    on_log: OnLog,
    *,
    docker_dir: Path | None = None,
    extra_build_args: Mapping[str, str] | None = None,
    events: BuildEvents | None = None,
) -> dict[str, ImageStatus]:
    """Make every spec's image available. Registry images whose base cannot be pulled come back
    ``available=False`` with a short reason (the raw engine error in ``detail`` and in the pull log); a failed
    build (or wheel download, or debootstrap) raises BuildError naming the image (fail-fast: later images are
    not attempted). Takes ``cache_lock(cache_dir)`` for the whole call (don't nest it)."""
    with cache_lock(cache_dir):
        return {
            spec.name: ensure_image(
                spec,
                engine,
                cache_dir,
                on_log,
                docker_dir=docker_dir,
                extra_build_args=extra_build_args,
                events=events,
            )
            for spec in specs
        }
