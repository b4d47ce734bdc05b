"""The results store: `results/<run-id>/manifest.json`, `cells/` (one JSON record per cell x repeat) and
`probes/` (calibration probes).

Every write is atomic (harness.atomicfile), so a crash or Ctrl-C never leaves a half-written document; every
read is strict, upgraded and validated (harness.results.resultdocs).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.atomicfile import write_json
from harness.errors import ResultError
from harness.results.resultdocs import (
    Doc,
    check_manifest,
    check_probe,
    check_record,
    read_json,
    validate,
    validate_record,
)
from harness.safenames import name_from, slug
from harness.timestamps import utc_compact


def new_run_id(profile: str, now: float, salt: str) -> str:
    """``<UTC time>-<profile slug>-<salt>``: sorts by time, says what ran, and two hosts never collide."""
    return f"{utc_compact(now)}-{slug(profile)}-{salt[:6]}"


def cell_key(cell_id: str) -> str:
    """File-system-safe, readable and unique-enough key for a cell id."""
    return name_from(cell_id)


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
        write_json(self.manifest_path, manifest)

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
        write_json(path, record)
        return path

    @property
    def probes_dir(self) -> Path:
        return self.path / "probes"

    def write_probe(self, probe: Doc) -> Path:
        """A calibration probe record (kind tfmh.probe-record), numbered in the order taken."""
        path = self.probes_dir / f"{int(probe['index']):03d}.json"
        write_json(path, probe)
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
