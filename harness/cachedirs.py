"""The harness's cache folder and everything in it. Every path below the cache root is named here.

``$TFMH_CACHE_DIR`` or ``~/.cache/tf-matrix-harness`` (``--cache-dir`` overrides both)::

    bases/           bootstrap base tarballs (and their rootfs while debootstrap runs)
    wheelhouse/<py>/ downloaded wheels; locks/ holds the wheel locks, sdists/ the source distributions of
                     requirements with no wheel, built/<sdist-hash>/ the wheels built from them in the base
    data/mnist/      the verified mnist.npz
    venvs/           native TF interpreters (harness.images.nativeenv)
    logs/            the full log of every step (debootstrap, pip download, docker build, pulls)
    tmp/             build contexts while an image builds
    .images.lock     serialises image preparation between harness processes
    images-used.json when a container was last started from each harness image (``harness images``)
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_CACHE_DIR = "TFMH_CACHE_DIR"


def default_root() -> Path:
    """``$TFMH_CACHE_DIR`` or ``~/.cache/tf-matrix-harness``."""
    env = os.environ.get(ENV_CACHE_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tf-matrix-harness"


def root(given: str | Path | None) -> Path:
    """The cache root: ``given`` (a ``--cache-dir``) when set, else the default."""
    return Path(given) if given else default_root()


def bases(cache: Path) -> Path:
    return cache / "bases"


def wheelhouse(cache: Path, python: str) -> Path:
    return cache / "wheelhouse" / python


def wheel_locks(cache: Path, python: str) -> Path:
    return wheelhouse(cache, python) / "locks"


def sdists(cache: Path, python: str) -> Path:
    return wheelhouse(cache, python) / "sdists"


def built_wheels(cache: Path, python: str) -> Path:
    """Wheels built from sdists inside a bootstrap base, one folder per sdist (named by its hash)."""
    return wheelhouse(cache, python) / "built"


def mnist(cache: Path) -> Path:
    return cache / "data" / "mnist"


def venvs(cache: Path) -> Path:
    return cache / "venvs"


def logs(cache: Path) -> Path:
    """Where every step's full log goes (debootstrap, pip download, docker build, registry pulls)."""
    return cache / "logs"


def build_contexts(cache: Path) -> Path:
    return cache / "tmp"


def image_uses(cache: Path) -> Path:
    return cache / "images-used.json"


def images_lock(cache: Path) -> Path:
    return cache / ".images.lock"
