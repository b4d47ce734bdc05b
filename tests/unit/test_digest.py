"""One hashing module: the digests equal the plain sha256 the cache keys and tags were made with."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from harness.digest import doc_sha256, file_sha256, text_sha256


def test_file_sha256_reads_past_one_block(tmp_path: Path) -> None:
    data = bytes(range(256)) * 8193  # a little over 2 MiB: three blocks
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    path.write_bytes(b"")
    assert file_sha256(path) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_text_sha256_is_utf8_and_truncates() -> None:
    assert text_sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert text_sha256("abc", 12) == "ba7816bf8f01"
    assert text_sha256("ü") == hashlib.sha256("ü".encode()).hexdigest()


def test_doc_sha256_is_canonical_and_keeps_existing_keys() -> None:
    a = {"suite": "bookworm", "packages": ["b", "a"], "version": 1}
    b = {"version": 1, "packages": ["b", "a"], "suite": "bookworm"}
    assert doc_sha256(a) == doc_sha256(b)
    assert doc_sha256(a) != doc_sha256({**a, "packages": ["a", "b"]})  # lists keep their order
    # the form bootstrap tags, wheel-lock keys and image tags were computed with before: caches stay valid
    assert doc_sha256(a, 16) == hashlib.sha256(json.dumps(a, sort_keys=True).encode()).hexdigest()[:16]
    assert len(doc_sha256(a, 20)) == 20 and len(doc_sha256(a)) == 64
