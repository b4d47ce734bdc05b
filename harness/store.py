"""The results store: `results/<run-id>/manifest.json` plus one JSON record per cell x repeat.

Every write is atomic (temp file in the same folder + os.replace), so a crash or Ctrl-C never leaves a
half-written document. Records carry `schema_version`; older versions are upgraded on load, newer ones are
refused with a clear message.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from harness.errors import ConfigError, ResultError

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


def write_json_atomic(path: Path, doc: Any) -> None:
    """Write `doc` as JSON to `path` so that readers see the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, sort_keys=True, allow_nan=False, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


#: result documents larger than this are refused before parsing
MAX_DOC_BYTES = 64 << 20
#: deepest nesting of a result document (real ones have < 10 levels)
MAX_DOC_DEPTH = 64
_SAFE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def safe_id(text: str, what: str = "run id") -> str:
    """`text` when it is usable as one folder name inside results/ (no separators, no `..`, no hidden
    names); ConfigError (exit 2) otherwise."""
    if not isinstance(text, str) or not _SAFE_ID_RE.match(text) or text in {".", ".."}:
        raise ConfigError(
            f"{what} {text!r}: expected letters, digits, '.', '_' and '-' (at most 128, starting with a "
            "letter or digit): one folder name inside the results folder"
        )
    return text


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
    """A JSON Schema shipped in harness/schemas/ (e.g. 'cell-record.v1')."""
    text = resources.files("harness").joinpath("schemas", f"{name}.json").read_text(encoding="utf-8")
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


def check_manifest(doc: Any, source: Path | str = "<manifest>") -> Doc:
    manifest = _upgrade(
        _as_object(doc, source, "run manifest"), MANIFEST_SCHEMA_VERSION, {}, source, "manifest"
    )
    problems = validate(manifest, f"run-manifest.v{MANIFEST_SCHEMA_VERSION}")
    if problems:
        raise _invalid(source, "run manifest", problems)
    return manifest


def check_probe(doc: Any, source: Path | str = "<probe record>") -> Doc:
    probe = _upgrade(
        _as_object(doc, source, "probe record"), PROBE_SCHEMA_VERSION, {}, source, "probe record"
    )
    problems = validate(probe, "probe-record.v1")
    if problems:
        raise _invalid(source, "probe record", problems)
    return probe


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


# ------------------------------------------------------------------------------------------- run folders


def new_run_id(profile: str, now: float, salt: str) -> str:
    stamp = _utc_stamp(now)
    safe = re.sub(r"[^a-z0-9-]+", "-", profile.lower()).strip("-") or "run"
    return f"{stamp}-{safe}-{salt[:6]}"


def _utc_stamp(now: float) -> str:
    import time

    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def cell_key(cell_id: str) -> str:
    """File-system-safe, readable and unique-enough key for a cell id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", cell_id)


@dataclass
class RunData:
    """One run loaded from disk: its manifest and its cell records (upgraded, validated)."""

    path: Path
    manifest: Doc
    records: list[Doc] = field(default_factory=list)
    #: calibration probe records (probes/NNN.json), oldest first
    probes: list[Doc] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])


class RunStore:
    """Read/write access to one run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def cells_dir(self) -> Path:
        return self.path / "cells"

    def record_path(self, cell_id: str, repeat: int, attempt: int | None = None) -> Path:
        """The record of a cell x repeat; a contended attempt that was re-run keeps its own file
        (`__a<attempt>`) so the evidence is never overwritten."""
        suffix = "" if attempt is None else f"__a{attempt}"
        return self.cells_dir / f"{cell_key(cell_id)}__r{repeat}{suffix}.json"

    def write_manifest(self, manifest: Doc) -> None:
        problems = validate(manifest, "run-manifest.v1")
        if problems:
            raise ResultError(f"refusing to store an invalid manifest for {self.path}: {problems[:3]}")
        write_json_atomic(self.manifest_path, manifest)

    def read_manifest(self) -> Doc:
        if not self.manifest_path.is_file():
            raise ResultError(f"{self.path}: not a run folder (no manifest.json)")
        return check_manifest(read_json(self.manifest_path), self.manifest_path)

    def write_record(self, record: Doc) -> Path:
        problems = validate_record(record)
        if problems:
            raise ResultError(
                f"refusing to store an invalid record for {record.get('cell_id')}: {problems[:3]}"
            )
        attempt = int(record.get("attempt") or 0) if record.get("rerun") else None
        path = self.record_path(record["cell_id"], record["repeat"], attempt)
        write_json_atomic(path, record)
        return path

    @property
    def probes_dir(self) -> Path:
        return self.path / "probes"

    def write_probe(self, probe: Doc) -> Path:
        """A calibration probe record (kind tfmh.probe-record), numbered in the order taken."""
        path = self.probes_dir / f"{int(probe['index']):03d}.json"
        write_json_atomic(path, probe)
        return path

    def iter_probes(self) -> Iterator[Doc]:
        if not self.probes_dir.is_dir():
            return
        for path in sorted(self.probes_dir.glob("*.json")):
            yield check_probe(read_json(path), path)

    def iter_records(self) -> Iterator[Doc]:
        """Every record (upgraded, validated); two files holding the same execution are refused."""
        if not self.cells_dir.is_dir():
            return
        seen: dict[tuple[str, int, int | None], Path] = {}
        for path in sorted(self.cells_dir.glob("*.json")):
            record = check_record(read_json(path), path)
            key = (record["cell_id"], record["repeat"], record["attempt"] if record.get("rerun") else None)
            if key in seen:
                raise ResultError(
                    f"{path}: cell {key[0]} repeat {key[1]} is recorded twice (also in {seen[key].name}); "
                    "expected one record per execution"
                )
            seen[key] = path
            yield record

    def next_attempt(self, cell_id: str, repeat: int) -> int:
        """The first attempt number without a kept file: a resumed run continues the numbering of the
        attempts stored before it was interrupted, so their evidence is never overwritten."""
        taken = [
            int(p.stem.rsplit("__a", 1)[1])
            for p in self.cells_dir.glob(f"{cell_key(cell_id)}__r{repeat}__a*.json")
            if p.stem.rsplit("__a", 1)[1].isdigit()
        ]
        return max(taken) + 1 if taken else 0

    def done(self) -> set[tuple[str, int]]:
        """(cell_id, repeat) pairs that already have a final record (any status; re-run attempts aside)."""
        return {(r["cell_id"], int(r["repeat"])) for r in self.iter_records() if not r.get("rerun")}

    def load(self) -> RunData:
        return RunData(
            path=self.path,
            manifest=self.read_manifest(),
            records=list(self.iter_records()),
            probes=list(self.iter_probes()),
        )


def load_run(path: Path) -> RunData:
    """Load a run folder (results/<run-id>) with its manifest and records."""
    return RunStore(path).load()


def _has_manifest(folder: Path) -> bool:
    try:
        return (folder / "manifest.json").is_file()
    except (OSError, ValueError):
        return False


def resolve_run(results_dir: Path, ref: str) -> Path:
    """A run given as a path, a run id under results_dir, or 'latest'."""
    if not ref.strip() or "\x00" in ref:
        raise ResultError(f"run {ref!r}: expected a run id, a run folder or 'latest'")
    direct = Path(ref)
    if _has_manifest(direct):
        return direct
    if ref == "latest":
        runs = list_runs(results_dir)
        if not runs:
            raise ResultError(f"{results_dir}: no runs yet")
        return runs[-1]
    candidate = results_dir / ref
    if _has_manifest(candidate):
        return candidate
    raise ResultError(f"run {ref!r}: no such run folder (looked at {direct} and {candidate})")


def list_runs(results_dir: Path) -> list[Path]:
    """Run folders under results_dir, oldest first (run ids start with a UTC timestamp)."""
    if not results_dir.is_dir():
        return []
    return sorted(p for p in results_dir.iterdir() if not p.name.startswith(".") and _has_manifest(p))


def load_runs(paths: list[Path]) -> tuple[list[RunData], list[tuple[Path, str]]]:
    """Every run that loads; the others as (path, why) so a caller can warn and go on."""
    runs: list[RunData] = []
    skipped: list[tuple[Path, str]] = []
    for path in paths:
        try:
            runs.append(load_run(path))
        except ResultError as exc:
            skipped.append((path, str(exc)))
    return runs, skipped
