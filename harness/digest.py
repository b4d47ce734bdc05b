"""SHA-256 digests: of a file, of text, and of a JSON-able document (the content-addressed tags and keys)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

_BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def files_sha256(paths: list[Path]) -> str:
    """The hex SHA-256 of named files, in the given order: each file's name, NUL, its bytes, NUL (the
    payload's checksum, computed as harness/payload/provenance.py computes it inside the container)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def text_sha256(text: str, chars: int | None = None) -> str:
    """The hex SHA-256 of ``text`` (UTF-8), its first ``chars`` characters when given."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:chars]


def doc_sha256(doc: object, chars: int | None = None) -> str:
    """The hex SHA-256 of a JSON-able document in canonical form (sorted keys), so equal documents give
    equal digests whatever the order they were built in; its first ``chars`` characters when given."""
    return text_sha256(json.dumps(doc, sort_keys=True), chars)
