"""Where the harness finds its repository files and keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The repository checkout the harness runs from (the parent of the `harness` package)."""
    return Path(__file__).resolve().parent.parent


def docker_dir() -> Path:
    return Path(os.environ.get("TFMH_DOCKER_DIR", project_root() / "docker"))


def payload_dir() -> Path:
    return Path(__file__).resolve().parent / "payload"
