"""The one snapshot check of the test suite: a missing or different snapshot fails. With
TFMH_UPDATE_SNAPSHOTS=1 a missing or different snapshot is (re)written and the test still fails, naming
it: a run never passes by writing, so review the diff, commit it and rerun."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

UPDATE_VARIABLE = "TFMH_UPDATE_SNAPSHOTS"


def updating() -> bool:
    return os.environ.get(UPDATE_VARIABLE) == "1"


def check_snapshot(path: Path, text: str) -> None:
    """Compare `text` with the snapshot at `path`; with TFMH_UPDATE_SNAPSHOTS=1 a missing or different one
    is (re)written first, and the test fails all the same (it passes only on a snapshot that matched)."""
    if updating() and (not path.is_file() or path.read_text(encoding="utf-8") != text):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        pytest.fail(
            f"snapshot {path.name} written; review the diff, commit it and rerun without {UPDATE_VARIABLE}"
        )
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
