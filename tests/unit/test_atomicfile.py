"""One atomic write: the target holds the old content or the new, never a part; no temp file is left."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.atomicfile import replacing, write_json, write_text


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_write_text_replaces_and_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "doc.txt"
    write_text(target, "one\n")
    write_text(target, "two ü\n")
    assert target.read_text(encoding="utf-8") == "two ü\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["doc.txt"]


def test_failure_inside_the_block_keeps_the_old_file_and_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), replacing(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_failure_before_the_first_version_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new.json"
    with pytest.raises(KeyboardInterrupt), replacing(target) as fh:
        fh.write(b"{")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_json_that_cannot_be_written_keeps_the_old_document(tmp_path: Path) -> None:
    target = tmp_path / "doc.json"
    write_json(target, {"b": 1, "a": [1.5]})
    with pytest.raises(ValueError):
        write_json(target, {"a": float("nan")})
    assert json.loads(target.read_text()) == {"a": [1.5], "b": 1}
    assert target.read_text().index('"a"') < target.read_text().index('"b"')  # sorted keys
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]


def test_a_failed_replace_removes_the_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    (target / "inner").mkdir(parents=True)  # a non-empty directory cannot be replaced by a file
    with pytest.raises(OSError):
        write_text(target, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_permissions_follow_the_umask_unless_a_mode_is_given(tmp_path: Path, umask_022: None) -> None:
    plain, shared = tmp_path / "plain", tmp_path / "shared"
    write_text(plain, "x")
    with replacing(shared, mode=0o640) as fh:
        fh.write(b"x")
    assert stat.S_IMODE(plain.stat().st_mode) == 0o644
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640
