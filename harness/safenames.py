"""Names that are safe as one path component: run ids, report folders, record file names.

One character set (letters, digits, ``.``, ``_``, ``-``), used two ways: ``checked_name`` refuses a name the
user chose (a ``--run-id``) when it is not one safe component; ``name_from`` turns any text (a cell id, a run
id read from someone else's manifest) into one, by replacing the other characters.
"""

from __future__ import annotations

import re

from harness.errors import ConfigError

MAX_NAME_CHARS = 128
_SAFE_NAME_RE = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME_CHARS - 1}}}$")
_UNSAFE_RE = re.compile(r"[^A-Za-z0-9._-]+")
_SLUG_UNSAFE_RE = re.compile(r"[^a-z0-9-]+")


def checked_name(text: str, what: str = "run id") -> str:
    """``text`` when it is usable as one folder name (no separators, no ``..``, no hidden names, at most
    MAX_NAME_CHARS); ConfigError (exit 2) naming ``what`` otherwise."""
    if not isinstance(text, str) or not _SAFE_NAME_RE.match(text):
        raise ConfigError(
            f"{what} {text!r}: expected letters, digits, '.', '_' and '-' (at most {MAX_NAME_CHARS}, "
            "starting with a letter or digit): one folder name inside the results folder"
        )
    return text


def name_from(text: str) -> str:
    """``text`` as one harmless path component: every run of other characters becomes ``_`` and leading
    dots go (no hidden files, no ``..``). Readable, and distinct for the ids the harness makes."""
    return _UNSAFE_RE.sub("_", text).lstrip(".") or "_"


def slug(text: str) -> str:
    """Lower-case letters, digits and ``-`` only (for the readable part of a run id); ``run`` when empty."""
    return _SLUG_UNSAFE_RE.sub("-", text.lower()).strip("-") or "run"
