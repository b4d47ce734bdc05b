"""Every place that names cell parameters agrees with the one contract, harness/matrix/params.py: the payload's
spec checker (which cannot import it), the payload code that reads a spec, the JSON Schemas' spec parts,
the pydantic models, matrix.yaml and the parameter table of docs/contracts.md."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml

from harness.execution.execute import SPEC_VERSION, build_spec
from harness.matrix.config import ImageSpec, Matrix, Profile, load_matrix
from harness.matrix.params import (
    DEVICES,
    PARAMS,
    SPEC_FIELDS,
    WORKLOADS,
    ParamSpec,
    defaults,
    spec_params,
)
from harness.matrix.plan import Cell, expand
from harness.results.resultdocs import PAYLOAD_SCHEMA_VERSION, RECORD_SCHEMA_VERSION, schema

ROOT = Path(__file__).resolve().parents[2]
PAYLOAD_DIR = ROOT / "harness" / "payload"
SPEC_KEYS = {*SPEC_FIELDS, *PARAMS}


def _payload_module(name: str) -> ModuleType:
    """A stdlib-only payload module imported by path (the payload is plain scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"tfmh_payload_{name}", PAYLOAD_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cellspec() -> ModuleType:
    return _payload_module("cellspec")


def _dict_keys(path: Path, name: str) -> list[Any]:
    """Keys of the dict literal assigned to `name` at the top level of a payload file."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            assert isinstance(node.value, ast.Dict), name
            return [ast.literal_eval(k) for k in node.value.keys if k is not None]
    raise AssertionError(f"{path.name} assigns no {name}")


# ------------------------------------------------------------------------------------------ the payload


def test_payload_table_mirrors_the_contract(cellspec: ModuleType) -> None:
    assert list(cellspec.PARAMS) == list(PARAMS), "the same parameters, in the same order"
    for name, p in PARAMS.items():
        rule = cellspec.PARAMS[name]
        mirrored = {
            "choices": tuple(rule.get("choices", ())),
            "minimum": rule.get("minimum", 0),
            "maximum": rule.get("maximum", 0),
            "nullable": bool(rule.get("nullable", False)),
            "workloads": tuple(rule.get("workloads", ())),
            "unused_when": tuple(rule.get("unused_when", ())),
        }
        contract = {k: getattr(p, k) for k in mirrored}
        assert mirrored == contract, name
        assert ("choices" in rule) == (p.kind == "choice"), name
    assert cellspec.WORKLOADS == WORKLOADS
    assert cellspec.DEVICES == DEVICES
    assert cellspec.FIELDS == SPEC_FIELDS
    assert cellspec.SPEC_VERSION == SPEC_VERSION


def _edges(p: ParamSpec) -> list[Any]:
    if p.kind == "choice":
        return [*p.choices, "bogus", None, 1]
    return [p.minimum - 1, p.minimum, p.maximum, p.maximum + 1, None, True, "1", 1.0]


@pytest.mark.parametrize("name", list(PARAMS))
def test_payload_accepts_exactly_what_the_host_accepts(cellspec: ModuleType, name: str) -> None:
    p = PARAMS[name]
    workload = p.workloads[0] if p.workloads else "mlp_fit"
    base = _spec(workload)
    for value in _edges(p):
        try:
            cellspec.check_spec({**base, **spec_params(workload, {**base, name: value})})
            payload_ok = True
        except cellspec.SpecError:
            payload_ok = False
        assert payload_ok == (p.check(value) is None), (name, value)


def _spec(workload: str) -> dict[str, Any]:
    """The spec the host writes for a cell of `workload` with every default."""
    image = ImageSpec.model_validate(
        {"name": "img", "tf": "2.15.1", "package": "tensorflow-cpu==2.15.1", "python": "3.11",
         "base": {"kind": "bootstrap"}}
    )  # fmt: skip
    return build_spec(Cell(f"img-cpu/{workload}", image, "cpu", workload, defaults(workload)), "/data")


def test_every_spec_of_the_repo_matrix_passes_the_payload_and_the_schema(cellspec: ModuleType) -> None:
    """The host's specs are complete: the payload (which fills nothing in) and the schema accept them."""
    spec_schema = schema(f"payload-result.v{PAYLOAD_SCHEMA_VERSION}")["properties"]["spec"]
    validator = jsonschema.Draft202012Validator(spec_schema)
    matrix = load_matrix(ROOT / "matrix.yaml")
    # every profile, and every workload's cells even where no profile selects them
    everything = {**matrix.profiles, "(all)": Profile()}
    matrix = matrix.model_copy(update={"profiles": everything})
    seen = set()
    for profile in matrix.profiles:
        for cell in expand(matrix, profile).cells:
            spec = build_spec(cell, "/data")
            assert set(spec) == SPEC_KEYS, cell.cell_id
            assert cellspec.check_spec(dict(spec)) == spec, cell.cell_id
            assert not list(validator.iter_errors(spec)), cell.cell_id
            seen.add(cell.workload)
    assert seen == set(WORKLOADS)


def test_payload_reads_only_spec_keys() -> None:
    """Every spec["key"] / spec.get("key") in the payload names a key of the contract's spec."""
    reads: dict[str, set[str]] = {}
    for path in sorted(PAYLOAD_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            key = None
            if isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "spec":
                key = node.slice
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and getattr(node.func.value, "id", None) == "spec"
                and node.args
            ):
                key = node.args[0]
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                reads.setdefault(key.value, set()).add(path.name)
    assert {"warmup_steps", "window_steps", "batch_size", "mode"} <= set(reads)  # the scan finds reads
    unknown = {k: sorted(v) for k, v in reads.items() if k not in SPEC_KEYS}
    assert not unknown, f"payload reads spec keys the contract does not define: {unknown}"


def test_payload_workload_and_mode_tables() -> None:
    assert _dict_keys(PAYLOAD_DIR / "models.py", "ARCHITECTURES") == list(WORKLOADS)
    assert set(_dict_keys(PAYLOAD_DIR / "resultio.py", "API_STYLES")) == set(PARAMS["mode"].choices)


# ------------------------------------------------------------------------------------------ the schemas


def _choice_enum(p: ParamSpec) -> set[Any]:
    """What a spec may hold for a choice parameter: its values, and null where a workload leaves it out."""
    return {*p.choices, *([None] if p.workloads or p.nullable else [])}


def test_payload_result_schema_spec_part() -> None:
    spec_part = schema(f"payload-result.v{PAYLOAD_SCHEMA_VERSION}")["properties"]["spec"]["anyOf"][0]
    props = spec_part["properties"]
    assert set(props) <= SPEC_KEYS, set(props) - SPEC_KEYS
    assert set(spec_part["required"]) <= SPEC_KEYS
    assert props["spec_version"] == {"const": SPEC_VERSION}
    assert props["workload"]["enum"] == list(WORKLOADS)
    assert props["device"]["enum"] == list(DEVICES)
    for name in set(props) & set(PARAMS):
        p = PARAMS[name]
        assert p.kind == "choice", f"{name}: the schema names an integer parameter; check its bounds here"
        assert set(props[name]["enum"]) == _choice_enum(p), name


def test_payload_result_schema_steps_accept_every_contract_value() -> None:
    steps = schema(f"payload-result.v{PAYLOAD_SCHEMA_VERSION}")["properties"]["steps"]["properties"]
    for name in ("warmup_steps", "window_steps"):
        assert "integer" in steps[name]["type"] and steps[name]["minimum"] <= PARAMS[name].minimum, name


def test_cell_record_schema_names_the_contract_workloads_and_devices() -> None:
    cell = schema(f"cell-record.v{RECORD_SCHEMA_VERSION}")["properties"]["cell"]["properties"]
    assert cell["workload"]["enum"] == list(WORKLOADS)
    assert cell["device"]["enum"] == list(DEVICES)
    assert cell["params"]["type"] == "object"


# ---------------------------------------------------------------------------------- the pydantic models


def test_pydantic_models_take_workloads_and_devices_from_the_contract() -> None:
    profile = Profile.model_json_schema()["properties"]
    assert profile["workloads"]["anyOf"][0]["items"]["enum"] == list(WORKLOADS)
    assert profile["devices"]["anyOf"][0]["items"]["enum"] == list(DEVICES)
    assert ImageSpec.model_json_schema()["properties"]["devices"]["items"]["enum"] == list(DEVICES)
    assert Matrix.model_json_schema()["properties"]["workloads"]["propertyNames"]["enum"] == list(WORKLOADS)


# ------------------------------------------------------------------------------------------ matrix.yaml


def test_matrix_yaml_does_not_restate_the_contract() -> None:
    """Top-level `defaults` would either restate the contract or contradict it (overrides belong to a
    workload or a profile); a workload's params must differ from the contract default they replace."""
    doc = yaml.safe_load((ROOT / "matrix.yaml").read_text(encoding="utf-8"))
    assert not doc.get("defaults"), (
        f"matrix.yaml defaults {doc.get('defaults')}: say it in harness/matrix/params.py"
    )
    restated = {
        f"workloads.{wl}.params.{k}": v
        for wl, spec in doc["workloads"].items()
        for k, v in (spec or {}).get("params", {}).items()
        if PARAMS[k].default == v
    }
    assert not restated, f"matrix.yaml restates contract defaults: {restated}"


@pytest.mark.parametrize(
    "profile, workload, warmup, window",
    [("default", "mlp_fit", 50, 100), ("measure", "mlp_loop", 50, 100), ("ci", "cnn_fit", 10, 10)],
)
def test_matrix_profiles_keep_their_warmup_and_window(
    profile: str, workload: str, warmup: int, window: int
) -> None:
    """The one default (50 / 100) is what the repo's profiles have always run with; ci overrides it."""
    cells = [c for c in expand(load_matrix(ROOT / "matrix.yaml"), profile).cells if c.workload == workload]
    assert cells and {(c.params["warmup_steps"], c.params["window_steps"]) for c in cells} == {
        (warmup, window)
    }


# ---------------------------------------------------------------------------------------------- the docs


def _doc_table_row(p: ParamSpec) -> str:
    if p.kind == "choice":
        values = ", ".join(f"`{c}`" for c in p.choices)
    else:
        values = f"integer {p.minimum} to {p.maximum}"
    values += " or `null`" if p.nullable else ""
    users = ", ".join(p.workloads) or "all"
    return f"| `{p.name}` | {values} | `{json.dumps(p.default)}` | {users} | {p.description} |"


def test_docs_parameter_table_is_the_contract() -> None:
    text = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if re.match(r"^\| `[a-z_]+` \|", line)]
    expected = [_doc_table_row(p) for p in PARAMS.values()]
    assert rows == expected, "docs/contracts.md parameter table; expected rows:\n" + "\n".join(expected)


def test_docs_spec_example_is_complete_with_contract_defaults() -> None:
    text = (ROOT / "docs" / "contracts.md").read_text(encoding="utf-8")
    block = text.split("## 1. Cell spec", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    example = json.loads(re.sub(r"\s*//[^\n]*", "", block))
    assert set(example) == SPEC_KEYS
    assert {k: example[k] for k in PARAMS} == {k: _spec(example["workload"])[k] for k in PARAMS}
