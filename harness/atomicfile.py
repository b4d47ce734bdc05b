"""Atomic file writes: readers see the old file or the new one, never a torn one.

The bytes go to a temporary file in the target's folder, are flushed to disk, then the temporary file is
renamed over the target (``os.replace``); when anything fails on the way the temporary file is removed and
the target is untouched. The payload keeps its own copy (``harness/payload/resultio.write_atomic``): it runs
inside the TF containers and cannot import the harness.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def replacing(path: Path, *, mode: int | None = None) -> Iterator[IO[bytes]]:
    """A binary file handle whose content replaces ``path`` when the block ends without an exception.

    The file gets the permissions ``open()`` would give it (0o666 less the umask) unless ``mode`` is given.
    An exception inside the block (or while replacing) removes the temporary file and leaves ``path`` as it
    was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            tmp.chmod(mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8), atomically."""
    with replacing(path) as fh:
        fh.write(text.encode("utf-8"))


def write_json(path: Path, doc: Any) -> None:
    """Replace ``path`` with ``doc`` as JSON (sorted keys, one-space indent, no NaN), atomically."""
    write_text(path, json.dumps(doc, indent=1, sort_keys=True, allow_nan=False, default=str) + "\n")
