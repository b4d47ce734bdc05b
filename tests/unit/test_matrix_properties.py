"""Property-based tests: arbitrary matrix files and arbitrary result documents never produce a traceback,
a hang or an exit code other than 0 or 2 — only a loaded matrix / record or one ConfigError / ResultError."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from harness.cli import main
from harness.errors import ConfigError, ResultError
from harness.matrix.config import load_matrix
from harness.matrix.plan import expand
from harness.results.resultdocs import check_manifest, check_probe, check_record, read_json

from .test_config_errors import GOOD

# keep Hypothesis's caches out of the work tree (no example database either: database=None below)
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="tfmh-hypothesis-"))

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "runs"
NEW = sorted(p.name for p in FIXTURES.iterdir())[-1]
RECORD = json.loads(
    (FIXTURES / NEW / "cells" / "tf2.15-py3.11-cpu_mlp_fit-numpy_bs32__r0.json").read_text(encoding="utf-8")
)
MANIFEST = json.loads((FIXTURES / NEW / "manifest.json").read_text(encoding="utf-8"))

FAST = settings(
    max_examples=150,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["cpu", "gpu", "numpy", "tfdata", "mlp_fit", "mlp_loop", "ci", "tf2.15-py3.11", "lots"]),
)
keys = st.one_of(
    st.sampled_from(
        [
            "version",
            "images",
            "workloads",
            "profiles",
            "defaults",
            "params",
            "include",
            "exclude",
            "batch_size",
            "epochs",
            "seed",
            "input",
            "mode",
            "image",
            "device",
            "workload",
            "repeats",
            "timeout_s",
            "ci",
            "mlp_fit",
        ]
    ),
    st.text(max_size=8),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=40,
)


def _load_and_plan(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "matrix.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            matrix = load_matrix(path)
            for name in matrix.profiles:
                expand(matrix, name, str(path))
        except ConfigError as exc:
            assert str(exc)


@FAST
@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    _load_and_plan(text)


@FAST
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    _load_and_plan(data)


@FAST
@given(documents)
def test_arbitrary_yaml_documents(doc: Any) -> None:
    _load_and_plan(yaml.safe_dump(doc, allow_unicode=True))


@FAST
@given(st.dictionaries(keys, documents, max_size=4), st.sampled_from(["", "  ", "    "]))
def test_good_matrix_with_arbitrary_additions(extra: dict[str, Any], indent: str) -> None:
    block = yaml.safe_dump(extra, default_flow_style=True, allow_unicode=True, width=10_000).strip()
    text = (
        GOOD.replace("    repeats: 2\n", f"    repeats: 2\n{indent}x_{block}\n") if indent else GOOD + block
    )
    _load_and_plan(text)


@FAST
@given(
    st.lists(
        st.sampled_from(["[", "]", "{", "}", "&a ", "*a ", "- ", ": ", "\n", "  ", "x", "<<", ", ", "!!"]),
        max_size=200,
    )
)
def test_yaml_punctuation_soup(parts: list[str]) -> None:
    _load_and_plan(GOOD + "".join(parts))


@settings(
    max_examples=40, deadline=5000, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=200))
def test_cli_plan_exit_codes(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "matrix.yaml"
        path.write_text(GOOD + text, encoding="utf-8", errors="surrogatepass")
        assert main(["plan", "--offline", "--format", "json", "--matrix", str(path), "--profile", "ci"]) in {
            0,
            2,
        }


# ------------------------------------------------------------------------------------------ result documents

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


RECORD_PATHS = _paths(RECORD)[1:]
MANIFEST_PATHS = _paths(MANIFEST)[1:]


def _mutated(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    out = json.loads(json.dumps(doc))
    node = out
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


@FAST
@given(json_values)
def test_arbitrary_json_as_record_manifest_probe(doc: Any) -> None:
    for check in (check_record, check_manifest, check_probe):
        try:
            check(doc, "doc.json")
        except ResultError as exc:
            assert "doc.json" in str(exc)


@FAST
@given(st.sampled_from(RECORD_PATHS), json_values, st.booleans())
def test_mutated_record(path: tuple[Any, ...], value: Any, delete: bool) -> None:
    try:
        check_record(_mutated(RECORD, path, value, delete), "r.json")
    except ResultError as exc:
        assert str(exc).startswith("r.json")


@FAST
@given(st.sampled_from(MANIFEST_PATHS), json_values, st.booleans())
def test_mutated_manifest(path: tuple[Any, ...], value: Any, delete: bool) -> None:
    try:
        check_manifest(_mutated(MANIFEST, path, value, delete), "m.json")
    except ResultError as exc:
        assert str(exc).startswith("m.json")


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_as_json(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.json"
        path.write_bytes(data)
        try:
            read_json(path)
        except ResultError as exc:
            assert str(path) in str(exc)


@pytest.fixture(scope="module")
def results_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prop") / "results"
    shutil.copytree(FIXTURES, out)
    return out


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.sampled_from(RECORD_PATHS), json_values, st.booleans(), st.sampled_from(["report", "compare", "merge"])
)
def test_cli_on_mutated_records(
    results_copy: Path, path: tuple[Any, ...], value: Any, delete: bool, command: str
) -> None:
    target = results_copy / NEW / "cells" / "tf2.15-py3.11-cpu_mlp_fit-numpy_bs32__r0.json"
    target.write_text(json.dumps(_mutated(RECORD, path, value, delete)), encoding="utf-8")
    reports = results_copy.parent / "reports"
    args = {
        "report": ["report", NEW],
        "compare": ["compare", NEW, NEW],
        "merge": ["merge", NEW, "--run-id", "merged-prop"],
    }[command]
    try:
        code = main([*args, "--results-dir", str(results_copy), "--reports-dir", str(reports)])
        assert code in {0, 2}
    finally:
        shutil.rmtree(results_copy / "merged-prop", ignore_errors=True)
        shutil.rmtree(reports, ignore_errors=True)
