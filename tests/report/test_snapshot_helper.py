"""The snapshot check never passes by writing: missing or different fails; only the update switch writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.snapshot import UPDATE_VARIABLE, check_snapshot


@pytest.fixture(autouse=True)
def _not_updating(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(UPDATE_VARIABLE, raising=False)
    monkeypatch.delenv("CI", raising=False)  # no CI switch: a missing snapshot fails on a laptop too


def test_missing_snapshot_fails_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "snap.txt"
    with pytest.raises(pytest.fail.Exception, match=r"snap\.txt missing"):
        check_snapshot(path, "text")
    assert not path.exists()


def test_different_snapshot_fails_and_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "snap.txt"
    path.write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(pytest.fail.Exception, match="line 2: expected 'b', got 'c'"):
        check_snapshot(path, "a\nc\n")
    assert path.read_text(encoding="utf-8") == "a\nb\n"


def test_equal_snapshot_passes(tmp_path: Path) -> None:
    path = tmp_path / "snap.txt"
    path.write_text("same", encoding="utf-8")
    check_snapshot(path, "same")


def test_only_the_update_switch_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(UPDATE_VARIABLE, "1")
    path = tmp_path / "sub" / "snap.txt"
    with pytest.raises(pytest.fail.Exception, match=r"snap\.txt written; review the diff"):
        check_snapshot(path, "new")  # written, and still a failure: a run never passes by writing
    assert path.read_text(encoding="utf-8") == "new"
    check_snapshot(path, "new")  # the update switch passes only what already matched
    monkeypatch.setenv(UPDATE_VARIABLE, "0")
    with pytest.raises(pytest.fail.Exception):
        check_snapshot(path, "newer")
    assert path.read_text(encoding="utf-8") == "new"
