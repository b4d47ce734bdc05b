"""The Request -> Execute -> Outcome boundary (like tox 4's execute API).

A Backend turns an ExecRequest (one cell x repeat, with its spec file and output folder on the host) into an
ExecOutcome (exit code, timeout/OOM flags, log tail). The runner never knows whether a container, a local
interpreter or a test fake did the work; `classify` turns the outcome plus the payload's result file into
the status that is stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.errors import ResultError
from harness.matrix.config import ImageSpec
from harness.matrix.params import spec_params
from harness.matrix.plan import Cell
from harness.results.resultdocs import PAYLOAD_SCHEMA_VERSION, upgrade_payload, validate

SPEC_VERSION = 1
SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
#: seconds between telemetry summary intervals while an execution runs (harness.execution.telemetry.Sampler)
TELEMETRY_INTERVAL_S = 1.0


@dataclass(frozen=True)
class ExecRequest:
    """One execution: a cell x repeat. `in_dir` holds spec.json (mounted read-only); `out_dir` receives
    result.json (the only writable mount)."""

    run_id: str
    cell: Cell
    repeat: int
    in_dir: Path
    out_dir: Path
    timeout_s: float
    cpus: float | None = None
    mem_limit: str | None = None
    #: CPUs to pin the execution to (docker --cpuset-cpus syntax, e.g. "0-1"); None: not pinned
    cpuset: str | None = None
    #: "cell": the benchmark (run.py --spec ... --out ...); "probe": the calibration kernel
    #: (run.py --probe --out ...), which needs no spec
    entry: str = "cell"
    #: the host folder with the data (mnist.npz), read-only for the payload; None: no data folder
    data_dir: Path | None = None

    @property
    def spec_path(self) -> Path:
        return self.in_dir / SPEC_FILE

    @property
    def result_path(self) -> Path:
        return self.out_dir / RESULT_FILE


@dataclass(frozen=True)
class ExecOutcome:
    exit_code: int | None
    timed_out: bool = False
    oom_killed: bool = False
    logs: str = ""
    wall_s: float = 0.0
    #: what executed it: kind (docker/local/fake), image tag/id, interpreter, limits
    runner: dict[str, Any] = field(default_factory=dict)
    #: host evidence sampled while it ran (harness.execution.telemetry.summary keys), None when not sampled
    telemetry: dict[str, Any] | None = None


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str | None = None
    #: the image could not be built: its cells are failures, not merely unavailable
    failed: bool = False
    #: the full text behind a short reason (the engine's raw error, a build log tail); kept in the record
    detail: str | None = None


class Backend(Protocol):
    """What the session and the runner need from an execution environment."""

    kind: str

    def check(self, cells: list[Cell]) -> dict[str, Availability]:
        """Whether each image the cells need can be had here, without making anything (no pull, no build):
        the availability step `plan` and `run` share. Availability per image name."""
        ...

    def prepare(self, cells: list[Cell]) -> dict[str, Availability]:
        """Make the images (or interpreters) the cells need; availability per image name."""
        ...

    def device_available(self, device: str) -> Availability: ...

    def data_path(self, host_dir: Path | None) -> str:
        """The data folder as the payload sees it (the spec's ``data_dir``): where the backend exposes
        ``host_dir`` (a mount point, or the host path itself); "" when there is none."""
        ...

    def engine_version(self) -> str | None:
        """The version of the engine that runs the executions (for the manifest's host facts); None: none."""
        ...

    def execute(self, request: ExecRequest) -> ExecOutcome:
        """Run the payload for one request. Must not raise for payload faults (crash, timeout, OOM)."""
        ...

    def cleanup(self) -> int:
        """Remove anything left running for this backend (e.g. after Ctrl-C); returns how many."""
        ...


def images_of(cells: list[Cell]) -> list[ImageSpec]:
    """The distinct images of ``cells``, in order (what ``Backend.check``/``prepare`` answer for)."""
    seen: dict[str, ImageSpec] = {}
    for cell in cells:
        seen.setdefault(cell.image.name, cell.image)
    return list(seen.values())


def payload_command(python: str, payload: str, in_dir: str, out_dir: str, entry: str = "cell") -> list[str]:
    """The payload's command line: the benchmark cell (``--spec``) or the calibration probe (``--probe``)."""
    if entry == "probe":
        return [python, f"{payload}/run.py", "--probe", "--out", f"{out_dir}/{RESULT_FILE}"]
    if entry != "cell":
        raise ValueError(f"unknown execution entry {entry!r} (cell | probe)")
    return [
        python,
        f"{payload}/run.py",
        "--spec",
        f"{in_dir}/{SPEC_FILE}",
        "--out",
        f"{out_dir}/{RESULT_FILE}",
    ]


def build_spec(cell: Cell, data_dir: str) -> dict[str, Any]:
    """The payload's input document (docs/contracts.md section 1): complete, every parameter present."""
    return {
        "spec_version": SPEC_VERSION,
        "cell_id": cell.cell_id,
        "workload": cell.workload,
        "device": cell.device,
        "data_dir": data_dir,
        **spec_params(cell.workload, cell.params),
    }


def make_dirs(request: ExecRequest) -> None:
    """The request's in and out folders; out is writable for the non-root container user
    (harness.images.sandbox.CONTAINER_USER)."""
    request.in_dir.mkdir(parents=True, exist_ok=True)
    request.out_dir.mkdir(parents=True, exist_ok=True)
    request.out_dir.chmod(0o777)


def write_spec(request: ExecRequest, spec: dict[str, Any]) -> None:
    make_dirs(request)
    request.spec_path.write_text(json.dumps(spec, indent=1, sort_keys=True), encoding="utf-8")


@dataclass(frozen=True)
class Classified:
    status: str
    reason: str | None
    payload: dict[str, Any] | None
    problems: list[str]


def _read_payload(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    if not path.exists():
        return None, ["the payload wrote no result file"]
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, [f"the result file is not valid JSON: {exc}"]
    if not isinstance(doc, dict):
        return None, ["the result file is not a JSON object"]
    try:
        doc = upgrade_payload(doc, path)
    except ResultError as exc:
        return None, [str(exc)]
    problems = validate(doc, f"payload-result.v{PAYLOAD_SCHEMA_VERSION}")
    return (None, problems) if problems else (doc, [])


def classify(request: ExecRequest, outcome: ExecOutcome) -> Classified:
    """Status of one execution from the engine's view (timeout, OOM, exit code) and the result file."""
    payload, problems = _read_payload(request.result_path)
    if outcome.timed_out:
        return Classified("timeout", f"timed out after {request.timeout_s:g} s (killed)", payload, problems)
    if outcome.oom_killed:
        limit = request.mem_limit or "the host's memory"
        return Classified("oom", f"killed by the OOM killer (memory limit: {limit})", payload, problems)
    if payload is None:
        why = "; ".join(problems[:3])
        return Classified("failed", f"bad output (exit code {outcome.exit_code}): {why}", None, problems)
    if payload.get("status") != "ok":
        err = payload.get("error") or {}
        reason = f"{err.get('type', 'Error')}: {err.get('message', 'the payload reported a failure')}"
        return Classified("failed", f"payload failed (exit code {outcome.exit_code}): {reason}", payload, [])
    if outcome.exit_code != 0:
        return Classified(
            "failed", f"exit code {outcome.exit_code} although the payload reported ok", payload, []
        )
    if payload.get("cell_id") != request.cell.cell_id:
        got = payload.get("cell_id")
        return Classified("failed", f"bad output: result is for cell {got!r}", None, ["cell_id mismatch"])
    return Classified("ok", None, payload, [])
