"""TF version pins live in matrix.yaml (packages) and docker/compat.yaml (tested configurations) only:
any other file that names a TF pin must agree with them."""

from __future__ import annotations

import re
from pathlib import Path

from harness.matrix.config import load_matrix
from harness.matrix.testedconfigs import load_table

PIN_RE = re.compile(r"\b(tensorflow(?:-cpu|-gpu)?)==(\d+\.\d+\.\d+)")
CHECKED = ["README.md", "tox.ini", "Makefile", ".ci/run", ".github/workflows", "docker", "tests/integration"]


def _pins_in(path: Path) -> set[str]:
    return {
        f"{m.group(1)}=={m.group(2)}"
        for m in PIN_RE.finditer(path.read_text(encoding="utf-8", errors="ignore"))
    }


def _files(root: Path) -> list[Path]:
    out: list[Path] = []
    for rel in CHECKED:
        p = root / rel
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(f for f in sorted(p.rglob("*")) if f.is_file() and f.suffix != ".pyc")
    return out


def test_other_files_agree_with_matrix(root: Path) -> None:
    matrix = load_matrix(root / "matrix.yaml")
    declared = {img.package for img in matrix.images.values()}
    strays = {str(f.relative_to(root)): sorted(_pins_in(f) - declared) for f in _files(root)}
    assert {k: v for k, v in strays.items() if v} == {}


def test_every_image_has_a_compat_row(root: Path) -> None:
    matrix = load_matrix(root / "matrix.yaml")
    table = load_table(root / "docker" / "compat.yaml")
    assert all(img.tf_minor in table for img in matrix.images.values())


def test_pin_scanner_finds_a_disagreeing_pin(tmp_path: Path) -> None:
    stray = tmp_path / "README.md"
    stray.write_text("pip install tensorflow-cpu==2.99.0\n", encoding="utf-8")
    assert _pins_in(stray) == {"tensorflow-cpu==2.99.0"}
