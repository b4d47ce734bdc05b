"""The bisection document of a `harness bisect` run folder: `<run>/bisect.json` (kind ``tfmh.bisect``).

Written by `harness.execution.bisect` after every probe (atomically; ``answer`` is null until the search
ends), read by the report. Versioned like the other result documents: a newer version is refused with a
clear message, and the document is validated against `schemas/bisect.v1.json` on write and on read.
"""

from __future__ import annotations

from pathlib import Path

from harness.atomicfile import write_json
from harness.errors import ResultError
from harness.results.resultdocs import Doc, read_json, validate

BISECT_KIND = "tfmh.bisect"
BISECT_SCHEMA_VERSION = 1
BISECT_FILE = "bisect.json"
SCHEMA = f"bisect.v{BISECT_SCHEMA_VERSION}"


def bisect_path(run_dir: Path) -> Path:
    return run_dir / BISECT_FILE


def write_bisect(run_dir: Path, doc: Doc) -> Path:
    """Validate and store the document beside the run's records."""
    problems = validate(doc, SCHEMA)
    if problems:
        raise ResultError(f"refusing to store an invalid bisection document for {run_dir}: {problems[:3]}")
    path = bisect_path(run_dir)
    write_json(path, doc)
    return path


def read_bisect(run_dir: Path) -> Doc | None:
    """The run's bisection document; None when the run is not a bisection. ResultError naming the file when
    it is unreadable, from a newer harness or invalid."""
    path = bisect_path(run_dir)
    if not path.is_file():
        return None
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise ResultError(f"{path}: expected a bisection document (a JSON object)")
    version = doc.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > BISECT_SCHEMA_VERSION:
        raise ResultError(
            f"{path}: bisection schema_version {version} is newer than this harness understands "
            f"({BISECT_SCHEMA_VERSION}); upgrade tf-matrix-harness to read it"
        )
    problems = validate(doc, SCHEMA)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ResultError(f"{path}: invalid bisection document: {problems[0]}{more}")
    return doc
