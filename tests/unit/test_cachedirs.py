"""One cache layout: every cache path is named by harness.cachedirs, and all of them lie under the root."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import harness
from harness import cachedirs
from harness.paths import docker_dir

HARNESS = Path(harness.__file__).resolve().parent


def test_root_prefers_the_flag_then_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TFMH_CACHE_DIR", "~/elsewhere")
    assert cachedirs.root(None) == Path.home() / "elsewhere"
    assert cachedirs.root(tmp_path) == tmp_path
    assert cachedirs.root(str(tmp_path)) == tmp_path
    monkeypatch.delenv("TFMH_CACHE_DIR")
    assert cachedirs.root(None) == Path.home() / ".cache" / "tf-matrix-harness"


def test_every_cache_path_is_a_distinct_place_under_the_root(tmp_path: Path) -> None:
    paths = [
        cachedirs.bases(tmp_path),
        cachedirs.wheelhouse(tmp_path, "3.11"),
        cachedirs.wheel_locks(tmp_path, "3.11"),
        cachedirs.mnist(tmp_path),
        cachedirs.venvs(tmp_path),
        cachedirs.logs(tmp_path),
        cachedirs.build_contexts(tmp_path),
        cachedirs.images_lock(tmp_path),
    ]
    assert all(p.is_relative_to(tmp_path) and p != tmp_path for p in paths)
    assert len(set(paths)) == len(paths)
    assert cachedirs.wheelhouse(tmp_path, "3.6") != cachedirs.wheelhouse(tmp_path, "3.11")


def test_no_other_module_builds_a_cache_path() -> None:
    """``cache_dir / "x"`` outside harness.cachedirs is a second owner of the layout."""
    pattern = re.compile(r"\bcache(?:_dir)?\s*/\s*[\"']")
    offenders = [
        f"{path.relative_to(HARNESS)}:{n}"
        for path in sorted(HARNESS.rglob("*.py"))
        if path.name != "cachedirs.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_docker_dir_is_the_checkout_folder_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TFMH_DOCKER_DIR", raising=False)
    assert (docker_dir() / "bootstrap.Dockerfile").is_file()
    assert (docker_dir() / "compat.yaml").is_file()
    monkeypatch.setenv("TFMH_DOCKER_DIR", "~/dockerfiles")
    assert docker_dir() == Path.home() / "dockerfiles"
