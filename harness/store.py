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

from harness.errors import ResultError

RECORD_SCHEMA_VERSION = 2
PAYLOAD_SCHEMA_VERSION = 2
MANIFEST_SCHEMA_VERSION = 1
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


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultError(f"{path}: not a readable JSON document: {exc}") from exc


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


def validate(doc: Doc, name: str) -> list[str]:
    """Validation errors of `doc` against schema `name` as readable strings (empty: valid)."""
    errors = sorted(_validator(name).iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors]


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
        if not self.manifest_path.exists():
            raise ResultError(f"{self.path}: not a run folder (no manifest.json)")
        doc: Doc = read_json(self.manifest_path)
        version = doc.get("schema_version")
        if not isinstance(version, int) or version > MANIFEST_SCHEMA_VERSION:
            raise ResultError(f"{self.manifest_path}: unsupported manifest schema_version {version!r}")
        return doc

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
            doc = read_json(path)
            if isinstance(doc, dict) and doc.get("kind") == PROBE_KIND:
                yield doc

    def iter_records(self) -> Iterator[Doc]:
        if not self.cells_dir.is_dir():
            return
        for path in sorted(self.cells_dir.glob("*.json")):
            doc = read_json(path)
            yield upgrade_record(doc, path)

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


def resolve_run(results_dir: Path, ref: str) -> Path:
    """A run given as a path, a run id under results_dir, or 'latest'."""
    direct = Path(ref)
    if (direct / "manifest.json").exists():
        return direct
    if ref == "latest":
        runs = list_runs(results_dir)
        if not runs:
            raise ResultError(f"{results_dir}: no runs yet")
        return runs[-1]
    candidate = results_dir / ref
    if (candidate / "manifest.json").exists():
        return candidate
    raise ResultError(f"run {ref!r}: no such run folder (looked at {direct} and {candidate})")


def list_runs(results_dir: Path) -> list[Path]:
    """Run folders under results_dir, oldest first (run ids start with a UTC timestamp)."""
    if not results_dir.is_dir():
        return []
    return sorted(p for p in results_dir.iterdir() if (p / "manifest.json").exists())
