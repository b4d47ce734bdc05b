"""What an image of the matrix is made of and what it is called: its base, its wheel lock, its build args and
the content-addressed tag ``tfmh/<image-name>:<hash>``, where the hash covers the Dockerfile text, the build
args, the base image ID and the sha256 of every wheel installed (so an existing tag means "already built").
Also the short wording of engine and build errors used in reasons and status lines.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from harness import cachedirs
from harness.atomicfile import write_text
from harness.digest import doc_sha256
from harness.errors import BuildError
from harness.images.bootstrap import builder_recipe_for, ensure_base, recipe_for
from harness.images.engine import DockerEngine
from harness.images.sdists import ContainerWheelBuilder, WheelBuilder
from harness.images.wheelhouse import WheelLock, platform_tags, read_lock, resolve_lock
from harness.matrix.config import BootstrapBase, ImageSpec, RegistryBase
from harness.matrix.testedconfigs import SUITE_GLIBC_MINOR, SUITE_PYTHON, load_table, tf_keras_requirement

#: bump when the way images are built changes in a way the hashed inputs don't capture
IMAGE_RECIPE_VERSION = 1
TAG_HASH_LEN = 20
#: glibc assumed for registry images when choosing wheels for extra_packages (Ubuntu 18.04 = 2.27)
REGISTRY_GLIBC_MINOR = 27

OnLog = Callable[[str], None]
#: the Dockerfile fragment appended for ``keras: legacy`` (in docker/), and its wheels' folder in the context
KERAS_LEGACY_DOCKERFILE = "keras-legacy.Dockerfile"
KERAS_LEGACY_WHEELS = "wheels-keras2"
#: the build arg (and ``tfmh.wheels_as_of`` label) naming the upload-time cutoff the wheels were resolved at
WHEELS_AS_OF_ARG = "WHEELS_AS_OF"


@dataclass(frozen=True)
class ImageStatus:
    """Whether an image of the matrix is usable here, and under which tag/ID (or why not)."""

    name: str
    available: bool
    tag: str | None = None
    image_id: str | None = None
    reason: str | None = None
    built: bool = False
    #: the raw engine error behind a short ``reason`` (kept for logs and records)
    detail: str | None = None


class BuildEvents:
    """What a build display hears while images are made (the CLI's status lines); the default is silent.

    ``step``: an image entered a step: ``base`` (bootstrap/import or pull), ``wheels`` (lock + download)
    or ``build`` (docker build). ``done``: it is ready (built or cached) or unavailable, with its size when
    known.
    ``failed``: a step failed; ``message`` is the BuildError text, which ends with the log tail."""

    def step(self, image: str, step: str, detail: str = "") -> None: ...

    def done(self, image: str, status: ImageStatus, size_bytes: int | None = None) -> None: ...

    def failed(self, image: str, message: str) -> None: ...


@dataclass(frozen=True)
class ImagePlan:
    """Everything needed to build one image, and the content-addressed tag it gets."""

    name: str
    dockerfile: str
    dockerfile_text: str
    buildargs: dict[str, str]
    base_ref: str
    base_id: str
    lock: WheelLock
    #: ``keras: legacy``: the tf_keras wheel, installed without dependencies (KERAS_LEGACY_WHEELS)
    keras_lock: WheelLock | None = None

    @property
    def digest(self) -> str:
        wheels = self.lock.wheel_hashes() + (self.keras_lock.wheel_hashes() if self.keras_lock else [])
        return content_hash(self.dockerfile_text, self.buildargs, self.base_id, wheels)

    @property
    def tag(self) -> str:
        return image_tag(self.name, self.digest)


# ------------------------------------------------------------------------------------------ pure parts


def content_hash(
    dockerfile_text: str, buildargs: Mapping[str, str], base_id: str, wheel_hashes: list[tuple[str, str]]
) -> str:
    doc = {
        "recipe": IMAGE_RECIPE_VERSION,
        "dockerfile": dockerfile_text,
        "buildargs": dict(sorted(buildargs.items())),
        "base_id": base_id,
        "wheels": sorted(wheel_hashes),
    }
    return doc_sha256(doc, TAG_HASH_LEN)


def image_tag(name: str, digest: str) -> str:
    return f"tfmh/{name}:{digest}"


def requirements_for(spec: ImageSpec) -> list[str]:
    """What goes into the wheelhouse: the TF package + extras (bootstrap) or only the extras (registry)."""
    if isinstance(spec.base, RegistryBase):
        return list(spec.extra_packages)
    return [spec.package, *spec.extra_packages]


def base_description(spec: ImageSpec) -> str:
    return spec.base.image if isinstance(spec.base, RegistryBase) else f"bootstrap:{spec.base.suite}"


def build_args_for(
    spec: ImageSpec, base_ref: str, base_id: str, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The Dockerfiles' build args. They also become the image's labels (``tfmh.*``) inside the Dockerfile."""
    python_bin = spec.base.python_bin if isinstance(spec.base, RegistryBase) else "python3"
    args = {
        "BASE_IMAGE": base_ref,
        "BASE_ID": base_id,
        "BASE_DESC": base_description(spec),
        "IMAGE_NAME": spec.name,
        "TF_VERSION": spec.tf,
        "TF_PACKAGE": spec.package,
        "PYTHON_VERSION": spec.python,
        "PYTHON": python_bin,
        "CUDA": spec.cuda or "",
        "CUDNN": spec.cudnn or "",
    }
    return {**args, **(extra or {})}


def lock_build_args(lock: WheelLock) -> dict[str, str]:
    """The lock's resolution basis as a build arg (none for a lock without one: its tag stays as it was)."""
    return {WHEELS_AS_OF_ARG: lock.uploaded_prior_to} if lock.uploaded_prior_to else {}


def dockerfile_name(spec: ImageSpec) -> str:
    return "registry.Dockerfile" if isinstance(spec.base, RegistryBase) else "bootstrap.Dockerfile"


def check_bootstrap_python(spec: ImageSpec, base: BootstrapBase) -> None:
    have = SUITE_PYTHON[base.suite]
    if spec.python != have:
        raise BuildError(
            f"image {spec.name}: python {spec.python} was declared but a bootstrap {base.suite} base has "
            f"python {have}; declare python: '{have}' or use another suite/base"
        )


_HOST_RE = re.compile(r"(?:lookup|https?://|dial tcp:?)\s*([A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,})")
_WHY: tuple[tuple[str, str], ...] = (
    ("no such host", "no DNS"),
    ("server misbehaving", "no DNS"),
    ("temporary failure in name resolution", "no DNS"),
    ("name or service not known", "no DNS"),
    ("network is unreachable", "network unreachable"),
    ("no route to host", "no route to host"),
    ("connection refused", "connection refused"),
    ("i/o timeout", "timed out"),
    ("timeout", "timed out"),
    ("timed out", "timed out"),
    ("x509", "TLS certificate error"),
    ("tls handshake", "TLS error"),
    ("unauthorized", "authentication required"),
    ("authentication required", "authentication required"),
    ("toomanyrequests", "rate limited"),
    ("pull access denied", "not found or access denied"),
    ("manifest unknown", "tag not found"),
    ("not found", "not found"),
)
SHORT_REASON_CHARS = 120


def short_engine_reason(raw: str, ref: str | None = None) -> str:
    """A short readable form of an engine/registry error: ``registry-1.docker.io (no DNS)``. The raw text
    belongs in the log; this goes into reasons and status lines."""
    text = " ".join(raw.split())
    low = text.lower()
    match = _HOST_RE.search(text)
    host = match.group(1) if match else None
    if host is None and ref is not None:
        first = ref.split("/", 1)[0]
        host = first if "." in first or ":" in first else "registry-1.docker.io"
    why = next((short for key, short in _WHY if key in low), None)
    if why is not None:
        return f"{host} ({why})" if host else why
    return text if len(text) <= SHORT_REASON_CHARS else text[: SHORT_REASON_CHARS - 1] + "…"


def short_build_error(message: str) -> str:
    """The first line of a BuildError (which ends with the log tail), for reasons and error lines."""
    first = message.strip().splitlines()[0] if message.strip() else "build failed"
    return first.rstrip(":; ")


def _write_log(path: Path, text: str) -> None:
    with contextlib.suppress(OSError):
        write_text(path, text if text.endswith("\n") else text + "\n")


def plan_image(
    spec: ImageSpec,
    engine: DockerEngine,
    cache_dir: Path,
    on_log: OnLog,
    docker_dir: Path,
    extra_build_args: Mapping[str, str] | None = None,
    events: BuildEvents | None = None,
) -> ImagePlan | ImageStatus:
    """Base + lock + tag for a spec, or an unavailable ImageStatus (registry base cannot be had)."""
    ev = events or BuildEvents()
    if isinstance(spec.base, RegistryBase):
        base_ref = spec.base.image
        base_id = engine.image_id(base_ref)
        if base_id is None:
            ev.step(spec.name, "base", f"pull {base_ref}")
            on_log(f"pulling {base_ref}")
            ok, msg = engine.registry_pull(base_ref)
            if not ok:
                log_path = cachedirs.logs(cache_dir) / f"pull-{spec.name}.log"
                _write_log(log_path, f"$ docker pull {base_ref}\n{msg}")
                on_log(f"pull of {base_ref} failed: {msg}")
                reason = f"registry unreachable: {short_engine_reason(msg, base_ref)}"
                return ImageStatus(spec.name, False, reason=reason, detail=msg)
            base_id = msg
        glibc = REGISTRY_GLIBC_MINOR
        builder: WheelBuilder | None = None
    else:
        check_bootstrap_python(spec, spec.base)
        ev.step(spec.name, "base", f"bootstrap:{spec.base.suite}")
        base_ref, base_id = ensure_base(spec.base, engine, cache_dir, on_log)
        glibc = SUITE_GLIBC_MINOR[spec.base.suite]
        builder_base = builder_recipe_for(spec.base)
        builder = ContainerWheelBuilder(engine, builder_base, cache_dir, spec.python, on_log)
    reqs = requirements_for(spec)
    ev.step(spec.name, "wheels", f"{len(reqs)} requirement(s)")
    lock = resolve_lock(
        reqs,
        spec.python,
        platform_tags(glibc),
        cache_dir,
        image=spec.name,
        on_log=on_log,
        build_sdist=builder,
    )
    keras_lock = None
    if spec.keras == "legacy":
        keras_lock = resolve_lock(
            [_tf_keras_requirement(spec, docker_dir)],
            spec.python,
            platform_tags(glibc),
            cache_dir,
            image=spec.name,
            on_log=on_log,
            no_deps=True,
        )
    return make_plan(spec, base_ref, base_id, lock, docker_dir, extra_build_args, keras_lock)


def make_plan(
    spec: ImageSpec,
    base_ref: str,
    base_id: str,
    lock: WheelLock,
    docker_dir: Path,
    extra_build_args: Mapping[str, str] | None = None,
    keras_lock: WheelLock | None = None,
) -> ImagePlan:
    """The plan (and so the tag) of an image from its base and its locks."""
    dockerfile = dockerfile_name(spec)
    text = _read_dockerfile(spec, docker_dir / dockerfile)
    if keras_lock is not None:
        text += "\n" + _read_dockerfile(spec, docker_dir / KERAS_LEGACY_DOCKERFILE)
    return ImagePlan(
        name=spec.name,
        dockerfile=dockerfile,
        dockerfile_text=text,
        buildargs=build_args_for(
            spec, base_ref, base_id, {**lock_build_args(lock), **(extra_build_args or {})}
        ),
        base_ref=base_ref,
        base_id=base_id,
        lock=lock,
        keras_lock=keras_lock,
    )


def _read_dockerfile(spec: ImageSpec, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"image {spec.name}: cannot read {path}: {exc.strerror}") from exc


def _tf_keras_requirement(spec: ImageSpec, docker_dir: Path) -> str:
    requirement = tf_keras_requirement(spec, load_table(docker_dir / "compat.yaml"))
    if requirement is None:
        raise BuildError(
            f"image {spec.name}: keras: legacy needs a tf_keras release matching TF {spec.tf_minor} "
            f"in {docker_dir / 'compat.yaml'} (column tf_keras)"
        )
    return requirement


def known_plan(spec: ImageSpec, engine: DockerEngine, cache_dir: Path, docker_dir: Path) -> ImagePlan | None:
    """The plan an image would get from what is already here (its base in the engine, its lock in the
    cache), without pulling, bootstrapping or resolving anything; None when either is missing."""
    if isinstance(spec.base, RegistryBase):
        base_ref, glibc = spec.base.image, REGISTRY_GLIBC_MINOR
    else:
        base_ref, glibc = recipe_for(spec.base).ref, SUITE_GLIBC_MINOR[spec.base.suite]
    base_id = engine.image_id(base_ref)
    reqs, platforms = requirements_for(spec), platform_tags(glibc)
    lock = (
        read_lock(cache_dir, reqs, spec.python, platforms)
        if reqs
        else WheelLock((), spec.python, platforms, ())
    )
    keras_lock = None
    if spec.keras == "legacy":
        keras_lock = read_lock(
            cache_dir, [_tf_keras_requirement(spec, docker_dir)], spec.python, platforms, no_deps=True
        )
        if keras_lock is None:
            return None
    if base_id is None or lock is None:
        return None
    return make_plan(spec, base_ref, base_id, lock, docker_dir, keras_lock=keras_lock)
