"""One path-safe name: a chosen id is refused unless it is one harmless component; any text can be made one."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from harness.errors import ConfigError
from harness.safenames import MAX_NAME_CHARS, checked_name, name_from, slug

HOSTILE = ["", ".", "..", "../x", "x/../../y", "/etc/passwd", "a/b", "a\\b", ".hidden", "-rf", "a b", "a\x00b",
           "ü", "a" * (MAX_NAME_CHARS + 1)]  # fmt: skip


@pytest.mark.parametrize("text", HOSTILE)
def test_checked_name_refuses_traversal_and_odd_names(text: str) -> None:
    with pytest.raises(ConfigError, match="--run-id"):
        checked_name(text, "--run-id")


@pytest.mark.parametrize("text", ["20261126T142000Z-ci-3f2a", "merged.v2_x", "a" * MAX_NAME_CHARS, "7"])
def test_checked_name_accepts_one_plain_component(text: str) -> None:
    assert checked_name(text) == text


@given(st.text(max_size=60))
@example(".hidden")
@example("../..")
@example("")
def test_name_from_always_gives_one_harmless_component(text: str) -> None:
    name = name_from(text)
    assert name and not name.startswith(".")
    assert all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
    assert Path(name).name == name and Path(name).parts == (name,)


def test_name_from_keeps_readable_ids_and_defuses_the_rest() -> None:
    assert name_from("tf2.15-py3.11-cpu/mlp_fit-numpy/bs32") == "tf2.15-py3.11-cpu_mlp_fit-numpy_bs32"
    assert name_from("../../etc") == "_.._etc"
    assert name_from("..") == "_"


def test_slug() -> None:
    assert slug("CI Nightly / GPU") == "ci-nightly-gpu"
    assert slug("___") == "run"
