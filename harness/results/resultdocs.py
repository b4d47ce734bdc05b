"""Result documents: cell records, run manifests, probe records and payload results as JSON.

Reading is strict (UTF-8, bounded size and depth, no NaN, no duplicate keys). Documents carry
`schema_version`: older versions are upgraded on load, newer ones are refused with a clear message; then they
are validated against the JSON Schemas shipped in harness/results/schemas/.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from harness.errors import ResultError

RECORD_SCHEMA_VERSION = 2
PAYLOAD_SCHEMA_VERSION = 2
MANIFEST_SCHEMA_VERSION = 1
PROBE_SCHEMA_VERSION = 1
RECORD_KIND = "tfmh.cell-record"
MANIFEST_KIND = "tfmh.run-manifest"
PROBE_KIND = "tfmh.probe-record"

Doc = dict[str, Any]


def _payload_v1_to_v2(doc: Doc) -> Doc:
    """v2 added the fit_total/fit_tail phases and runtime.cpu_affinity: unknown in v1 documents."""
    out = {**doc, "schema_version": 2}
    if isinstance(doc.get("phases_s"), dict):
        out["phases_s"] = {"fit_total": None, "fit_tail": None, **doc["phases_s"]}
    return out


def _record_v1_to_v2(doc: Doc) -> Doc:
    """v2 added attempt/telemetry/contention (v1 executions had no host evidence: null, never guessed)."""
    out = {**doc, "schema_version": 2, "attempt": 0, "telemetry": None, "contention": None}
    if isinstance(doc.get("payload"), dict):
        out["payload"] = upgrade_payload(doc["payload"])
    return out


#: upgrade functions: from version N to N+1
_RECORD_UPGRADES: dict[int, Callable[[Doc], Doc]] = {1: _record_v1_to_v2}
_PAYLOAD_UPGRADES: dict[int, Callable[[Doc], Doc]] = {1: _payload_v1_to_v2}


#: result documents larger than this are refused before parsing
MAX_DOC_BYTES = 64 << 20
#: deepest nesting of a result document (real ones have < 10 levels)
MAX_DOC_DEPTH = 64


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            raise ValueError(f"duplicate key {key!r}")
        doc[key] = value
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth_ok(doc: Any) -> bool:
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DOC_DEPTH:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return True


def read_json(path: Path) -> Any:
    """A JSON document, strictly: UTF-8, at most MAX_DOC_BYTES, no NaN/Infinity, no duplicate keys, at
    most MAX_DOC_DEPTH levels deep. ResultError (exit 2) naming the file otherwise."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_DOC_BYTES + 1)
    except OSError as exc:
        raise ResultError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_DOC_BYTES:
        raise ResultError(f"{path}: larger than {MAX_DOC_BYTES} bytes; expected a result document")
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except UnicodeDecodeError as exc:
        raise ResultError(f"{path}: not UTF-8 (byte {exc.start}); expected a JSON document") from None
    except json.JSONDecodeError as exc:
        raise ResultError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    except ValueError as exc:
        raise ResultError(f"{path}: not a valid result document: {exc}") from None
    except RecursionError:
        raise ResultError(f"{path}: nested too deeply; expected a result document") from None
    if not _depth_ok(doc):
        raise ResultError(f"{path}: nested deeper than {MAX_DOC_DEPTH} levels; expected a result document")
    return doc


@cache
def schema(name: str) -> Doc:
    """A JSON Schema shipped in harness/results/schemas/ (e.g. 'cell-record.v1')."""
    text = resources.files("harness.results").joinpath("schemas", f"{name}.json").read_text(encoding="utf-8")
    doc: Doc = json.loads(text)
    return doc


def _validator(name: str) -> jsonschema.protocols.Validator:
    registry_schema = schema(name)
    cls = jsonschema.validators.validator_for(registry_schema)
    return cls(registry_schema)


#: probe records (contracts section 5) have no schema file of their own: this one is checked on read
PROBE_RECORD_SCHEMA: Doc = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["kind", "schema_version", "run_id", "index", "label", "status"],
    "properties": {
        "kind": {"const": PROBE_KIND},
        "schema_version": {"const": PROBE_SCHEMA_VERSION},
        "run_id": {"type": "string", "minLength": 1},
        "source_run_id": {"type": "string"},
        "index": {"type": "integer", "minimum": 0},
        "label": {"type": "string"},
        "at": {"type": ["string", "null"]},
        "image": {"type": ["string", "null"]},
        "status": {"enum": ["ok", "failed"]},
        "reason": {"type": ["string", "null"]},
        "runner": {"type": ["object", "null"]},
        "telemetry": {"type": ["object", "null"]},
        "result": {
            "type": ["object", "null"],
            "properties": {
                "matmul_gflops": {"type": ["number", "null"]},
                "loop_mops": {"type": ["number", "null"]},
            },
        },
    },
}


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate(doc: Doc, name: str) -> list[str]:
    """Validation errors of `doc` against schema `name` as readable strings (empty: valid)."""
    validator = (
        jsonschema.Draft202012Validator(PROBE_RECORD_SCHEMA)
        if name == "probe-record.v1"
        else _validator(name)
    )
    errors = sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {_short(e.message)}" for e in errors]


def _invalid(source: Path | str, what: str, problems: list[str]) -> ResultError:
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return ResultError(f"{source}: invalid {what}: {problems[0]}{more}")


def _as_object(doc: Any, source: Path | str, what: str) -> Doc:
    if not isinstance(doc, dict):
        raise ResultError(f"{source}: expected a {what} (a JSON object), got {type(doc).__name__}")
    return doc


def check_record(doc: Any, source: Path | str = "<record>") -> Doc:
    """A cell record as read from disk: upgraded to the current version (newer refused), its payload
    too, then validated against cell-record.v2 + payload-result.v2. ResultError naming the field."""
    record = _as_object(doc, source, "cell record")
    if isinstance(record.get("payload"), dict):
        record = {**record, "payload": upgrade_payload(record["payload"], f"{source}: payload")}
    record = upgrade_record(record, source)
    problems = validate_record(record)
    if problems:
        raise _invalid(source, "cell record", problems)
    return record


def _check_versioned(
    doc: Any, source: Path | str, what: str, upgrade_what: str, version: int, name: str
) -> Doc:
    """A document without upgrade steps yet: an object, not newer than ``version``, valid against ``name``."""
    checked = _upgrade(_as_object(doc, source, what), version, {}, source, upgrade_what)
    problems = validate(checked, name)
    if problems:
        raise _invalid(source, what, problems)
    return checked


def check_manifest(doc: Any, source: Path | str = "<manifest>") -> Doc:
    name = f"run-manifest.v{MANIFEST_SCHEMA_VERSION}"
    return _check_versioned(doc, source, "run manifest", "manifest", MANIFEST_SCHEMA_VERSION, name)


def check_probe(doc: Any, source: Path | str = "<probe record>") -> Doc:
    name = f"probe-record.v{PROBE_SCHEMA_VERSION}"
    return _check_versioned(doc, source, "probe record", "probe record", PROBE_SCHEMA_VERSION, name)


def validate_record(record: Doc) -> list[str]:
    """Problems of a cell record, including its nested payload result when there is one."""
    problems = validate(record, f"cell-record.v{RECORD_SCHEMA_VERSION}")
    payload = record.get("payload")
    if isinstance(payload, dict):
        problems += [f"payload/{p}" for p in validate(payload, f"payload-result.v{PAYLOAD_SCHEMA_VERSION}")]
    return problems


def _upgrade(
    doc: Doc, current: int, steps: dict[int, Callable[[Doc], Doc]], source: Path | str, what: str
) -> Doc:
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ResultError(f"{source}: {what} schema_version: expected an integer, got {version!r}")
    if version > current:
        raise ResultError(
            f"{source}: {what} schema_version {version} is newer than this harness understands "
            f"({current}); upgrade tf-matrix-harness to read it"
        )
    while version < current:
        step = steps.get(version)
        if step is None:
            raise ResultError(f"{source}: no upgrade path for a {what} from schema_version {version}")
        doc = step(doc)
        version = doc["schema_version"]
    return doc


def upgrade_record(doc: Doc, source: Path | str = "<record>") -> Doc:
    """Bring a cell record to the current schema version, or refuse one from a newer harness."""
    return _upgrade(doc, RECORD_SCHEMA_VERSION, _RECORD_UPGRADES, source, "cell record")


def upgrade_payload(doc: Doc, source: Path | str = "<payload result>") -> Doc:
    """Bring a payload result to the current schema version, or refuse one from a newer payload."""
    return _upgrade(doc, PAYLOAD_SCHEMA_VERSION, _PAYLOAD_UPGRADES, source, "payload result")
