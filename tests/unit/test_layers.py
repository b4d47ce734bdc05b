"""The package reads as the pipeline: matrix -> images -> results -> analysis -> execution -> report -> cli.
A module may import its own stage and the stages before it (and the shared infrastructure at the top level:
errors, paths, atomic writes, digests, timestamps, safe names, cache folders), never a later stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "harness"
#: stage -> rank; top-level modules not listed here are shared infrastructure (rank 0)
STAGES = {"matrix": 1, "images": 2, "results": 3, "analysis": 4, "execution": 5, "report": 6}
ENTRY = {"cli": 7, "cliparser": 7, "__main__": 8}


def rank_of(module: str) -> int:
    """``harness.x.y`` -> its stage's rank."""
    parts = module.split(".")
    if parts[0] != "harness" or len(parts) == 1:
        return 0
    return STAGES.get(parts[1], ENTRY.get(parts[1], 0))


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "harness":
                out |= {f"harness.{alias.name}" for alias in node.names}
            else:
                out.add(node.module)
    return {m for m in out if m.split(".")[0] == "harness"}


def module_name(path: Path) -> str:
    rel = path.relative_to(HARNESS.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(p for p in HARNESS.rglob("*.py") if "payload" not in p.relative_to(HARNESS).parts)


def test_every_module_sits_in_a_stage_or_is_shared_infrastructure() -> None:
    top = {p.stem for p in HARNESS.glob("*.py")} - {"__init__"}
    shared = top - set(ENTRY)
    assert shared == {
        "atomicfile",
        "cachedirs",
        "digest",
        "errors",
        "filelock",
        "paths",
        "safenames",
        "subproc",
        "timestamps",
    }
    assert {p.name for p in HARNESS.iterdir() if p.is_dir() and not p.name.startswith("__")} == {
        *STAGES,
        "payload",
    }


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_a_later_stage(path: Path) -> None:
    me = module_name(path)
    later = sorted(m for m in imports_of(path) if rank_of(m) > rank_of(me))
    assert later == [], f"{me} (stage rank {rank_of(me)}) imports later stages: {later}"


def test_the_rule_can_fail() -> None:
    """The checker sees a wrong-way import (a results module importing the report)."""
    assert rank_of("harness.report.html") > rank_of("harness.results.store")
    assert rank_of("harness.timestamps") == 0 and rank_of("harness.cli") == 7


def test_no_module_is_over_400_lines() -> None:
    long = {
        module_name(p): n for p in MODULES if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}
