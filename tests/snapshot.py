"""The one snapshot check of the test suite: a missing or different snapshot fails; snapshots are written
only when TFMH_UPDATE_SNAPSHOTS=1 is set (then review the diff and commit it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

UPDATE_VARIABLE = "TFMH_UPDATE_SNAPSHOTS"


def updating() -> bool:
    return os.environ.get(UPDATE_VARIABLE) == "1"


def check_snapshot(path: Path, text: str) -> None:
    """Compare `text` with the snapshot at `path`; with TFMH_UPDATE_SNAPSHOTS=1 (re)write it instead."""
    if updating():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.is_file():
        pytest.fail(f"snapshot {path.name} missing; write it with {UPDATE_VARIABLE}=1 and review it")
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        pytest.fail(
            f"{path.name} differs from the snapshot ({_first_difference(expected, text)}); "
            f"rerun with {UPDATE_VARIABLE}=1 if intended and review the diff"
        )


def _first_difference(expected: str, actual: str) -> str:
    old, new = expected.splitlines(), actual.splitlines()
    for n, (a, b) in enumerate(zip(old, new, strict=False), 1):
        if a != b:
            return f"line {n}: expected {a[:80]!r}, got {b[:80]!r}"
    return f"expected {len(old)} lines, got {len(new)}"
