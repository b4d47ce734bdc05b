"""Where the harness finds its repository files (its caches: harness.cachedirs)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_DOCKER_DIR = "TFMH_DOCKER_DIR"


def project_root() -> Path:
    """The repository checkout the harness runs from (the parent of the `harness` package)."""
    return Path(__file__).resolve().parent.parent


def docker_dir() -> Path:
    """The Dockerfiles and compat.yaml: ``$TFMH_DOCKER_DIR``, else the repository's top-level ``docker/``."""
    env = os.environ.get(ENV_DOCKER_DIR)
    return Path(env).expanduser() if env else project_root() / "docker"


def payload_dir() -> Path:
    return Path(__file__).resolve().parent / "payload"
