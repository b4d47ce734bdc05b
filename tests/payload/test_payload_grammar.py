"""Every payload file must parse as Python 3.6 and avoid post-3.6 stdlib / post-1.16 numpy APIs."""

import ast
import re

import pytest
from conftest import PAYLOAD_DIR, TF1_PATH_FILES, TF2_ONLY_FILES

PAYLOAD_FILES = sorted(p.name for p in PAYLOAD_DIR.glob("*.py"))

# Names the 3.6 grammar check cannot see: newer stdlib / numpy APIs, and host imports.
FORBIDDEN = {
    r"\bfrom __future__ import annotations\b": "postponed annotations (3.7+)",
    r"\bdataclasses\b": "dataclasses (3.7+)",
    r"\bcapture_output\b": "subprocess capture_output (3.7+)",
    r"\bperf_counter_ns\b|\btime_ns\b": "time.*_ns (3.7+)",
    r"\bimportlib\.metadata\b|\bimportlib_metadata\b": "importlib.metadata (3.8+)",
    r"\bdefault_rng\b|\bnp\.random\.Generator\b": "numpy Generator API (numpy 1.17+)",
    r"^\s*(from|import)\s+harness\b": "host code import",
    r"\bbreakpoint\(": "breakpoint() (3.7+)",
}
ALLOWED_IMPORTS = {
    "argparse",
    "datetime",
    "glob",
    "hashlib",
    "json",
    "math",
    "os",
    "platform",
    "random",
    "resource",
    "sys",
    "time",
    "traceback",
    "numpy",
    "tensorflow",
}


def parse36(src):
    return ast.parse(src, feature_version=(3, 6))


@pytest.mark.parametrize("name", PAYLOAD_FILES)
def test_parses_as_python36(name):
    parse36((PAYLOAD_DIR / name).read_text())


@pytest.mark.parametrize(
    "snippet",
    [
        "if (n := 10) > 5:\n    pass\n",
        "def f(a, /, b):\n    return a\n",
    ],
    ids=["walrus", "positional-only"],
)
def test_python36_check_rejects_newer_grammar(snippet):
    ast.parse(snippet)  # valid on the host interpreter ...
    with pytest.raises(SyntaxError):
        parse36(snippet)  # ... but not as Python 3.6


@pytest.mark.parametrize("name", PAYLOAD_FILES)
def test_no_forbidden_apis(name):
    src = (PAYLOAD_DIR / name).read_text()
    found = [why for pattern, why in FORBIDDEN.items() if re.search(pattern, src, re.MULTILINE)]
    assert not found, f"{name} uses {found}"


def test_forbidden_pattern_check_can_fail():
    src = "import numpy as np\nrng = np.random.default_rng(0)\n"
    assert any(re.search(p, src, re.MULTILINE) for p in FORBIDDEN)


@pytest.mark.parametrize("name", PAYLOAD_FILES)
def test_imports_only_stdlib_numpy_tensorflow_or_siblings(name):
    siblings = {n[:-3] for n in PAYLOAD_FILES}
    for node in ast.walk(parse36((PAYLOAD_DIR / name).read_text())):
        if isinstance(node, ast.Import):
            mods = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"relative import in {name} (the payload is not a package)"
            mods = [node.module.split(".")[0]]
        else:
            continue
        for mod in mods:
            assert mod in ALLOWED_IMPORTS or mod in siblings, f"{name} imports {mod}"


def test_every_payload_file_is_classified():
    assert set(TF1_PATH_FILES) | set(TF2_ONLY_FILES) == set(PAYLOAD_FILES)
    assert not set(TF1_PATH_FILES) & set(TF2_ONLY_FILES)
