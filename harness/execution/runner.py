"""Run a plan's cells through a Backend: one fresh execution per cell x repeat, one stored record each.

Faults stay inside their cell: a crash, timeout, OOM or garbage output becomes that cell's record and the
run goes on. Records are written atomically as each execution ends, so completed results survive Ctrl-C
and `--resume` picks up exactly the missing (cell, repeat) pairs.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.execution.contention import judge
from harness.execution.execute import (
    RESULT_FILE,
    Backend,
    ExecOutcome,
    ExecRequest,
    build_spec,
    classify,
    make_dirs,
    write_spec,
)
from harness.matrix.config import QuietGate
from harness.matrix.plan import Cell
from harness.results.resultdocs import PROBE_KIND, RECORD_KIND, RECORD_SCHEMA_VERSION, read_json
from harness.results.store import RunStore, cell_key
from harness.timestamps import utc_iso

LOG_TAIL_CHARS = 4000


@dataclass(frozen=True)
class Job:
    cell: Cell
    repeat: int


class RunObserver:
    """Progress hooks; the CLI plugs a rich display in, tests use the default no-op."""

    def start(self, total: int) -> None: ...

    def phase(self, phase: str, cell: str = "") -> None: ...

    def job_started(self, job: Job) -> None: ...

    def job_finished(self, job: Job, record: dict[str, Any]) -> None: ...

    def log(self, line: str) -> None:
        """A line of build/preparation output (shown when verbose)."""

    def note(self, text: str) -> None:
        """A line always worth showing (which interpreter has what, data downloads)."""


def declared(cell: Cell) -> dict[str, Any]:
    image = cell.image
    base = image.base
    base_text = f"bootstrap:{base.suite}" if base.kind == "bootstrap" else f"registry:{base.image}"
    return {
        "tf": image.tf,
        "python": image.python,
        "cuda": image.cuda,
        "cudnn": image.cudnn,
        "package": image.package,
        "base": base_text,
    }


def make_record(run_id: str, job: Job, **fields: Any) -> dict[str, Any]:
    """A cell record (harness/results/schemas/cell-record.v1.json) with defaults for what `fields` leaves
    out."""
    record: dict[str, Any] = {
        "schema_version": RECORD_SCHEMA_VERSION,
        "kind": RECORD_KIND,
        "run_id": run_id,
        "cell_id": job.cell.cell_id,
        "repeat": job.repeat,
        "attempt": 0,
        "status": "unavailable",
        "reason": None,
        "exit_code": None,
        "log_tail": "",
        "cell": {
            "image": job.cell.image.name,
            "device": job.cell.device,
            "workload": job.cell.workload,
            "params": dict(job.cell.params),
            "declared": declared(job.cell),
        },
        "runner": {"kind": "none"},
        "started_at": None,
        "finished_at": None,
        "wall_s": None,
        "payload": None,
        "telemetry": None,
        "contention": None,
    }
    record.update(fields)
    return record


def plan_rounds(cells: list[Cell], repeats: int, done: set[tuple[str, int]]) -> list[list[Job]]:
    """Every (cell, repeat) not yet done, in rounds: all cells' repeat 0, then all cells' repeat 1 in the
    reverse order, and so on. Slow drift on the host (thermal, background load) then hits every image alike
    instead of biasing whichever image happens to run last. An unavailable cell gets one record (repeat 0).
    Empty rounds (everything done) are left out."""
    rounds: list[list[Job]] = []
    for r in range(repeats):
        ordered = cells if r % 2 == 0 else list(reversed(cells))
        jobs = [
            Job(cell, r) for cell in ordered if (r == 0 or cell.available) and (cell.cell_id, r) not in done
        ]
        if jobs:
            rounds.append(jobs)
    return rounds


def plan_jobs(cells: list[Cell], repeats: int, done: set[tuple[str, int]]) -> list[Job]:
    """`plan_rounds`, flattened."""
    return [job for jobs in plan_rounds(cells, repeats, done) for job in jobs]


@dataclass
class Runner:
    """Executes jobs one at a time. With a quiet-host policy it waits (bounded) for a quiet host before
    each execution, judges the host evidence afterwards and re-runs a contended execution up to the
    policy's bound; every attempt's record is kept."""

    backend: Backend
    store: RunStore
    run_id: str
    timeout_s: float
    cpus: float | None = None
    mem_limit: str | None = None
    cpuset: str | None = None
    #: the host folder with the data (the backend says where the payload sees it); None: none
    data_dir: Path | None = None
    observer: RunObserver = RunObserver()  # noqa: RUF009 - stateless default
    clock: Callable[[], float] = time.time
    #: None: no contention verdicts (no policy)
    quiet: QuietGate | None = None
    #: waits for a quiet host before an execution and says how that went; None: do not wait
    gate: Callable[[], dict[str, Any]] | None = None

    def run(self, jobs: list[Job], announce: bool = True) -> list[dict[str, Any]]:
        """Execute `jobs` in order, storing each final record; `announce`: tell the observer how many."""
        if announce:
            self.observer.start(len(jobs))
        records = []
        try:
            for job in jobs:
                self.observer.job_started(job)
                record = self.run_job(job)
                self.store.write_record(record)
                self.observer.job_finished(job, record)
                records.append(record)
        finally:
            shutil.rmtree(self.store.path / ".work", ignore_errors=True)
        return records

    def run_job(self, job: Job) -> dict[str, Any]:
        """The final record of a job; contended attempts that were re-run are stored on the way."""
        if not job.cell.available:
            return make_record(
                self.run_id,
                job,
                status=job.cell.skip_status,
                reason=job.cell.reason or "unavailable",
                log_tail=(job.cell.detail or "")[-LOG_TAIL_CHARS:],
            )
        first = attempt = self.store.next_attempt(job.cell.cell_id, job.repeat)  # > 0 after a resume
        while True:
            record = self._attempt(job, attempt)
            contention = record.get("contention") or {}
            if not contention.get("contended") or self.quiet is None or attempt - first >= self.quiet.reruns:
                return record
            record["rerun"] = True
            self.store.write_record(record)
            self.observer.job_finished(job, record)
            attempt += 1

    def _attempt(self, job: Job, attempt: int) -> dict[str, Any]:
        gate = self.gate() if self.gate is not None else None
        request = self._request(job)
        write_spec(request, build_spec(job.cell, self.backend.data_path(self.data_dir)))
        started = self.clock()
        try:
            outcome = self.backend.execute(request)
        finally:
            finished = self.clock()
        record = self._record(job, request, outcome, started, finished)
        record["attempt"] = attempt
        telemetry = dict(outcome.telemetry) if outcome.telemetry else None
        if telemetry is not None:
            telemetry["gate"] = gate
            record["telemetry"] = telemetry
        if record["status"] == "ok" and self.quiet is not None:
            record["contention"] = judge(telemetry, self.quiet)
        shutil.rmtree(request.in_dir.parent, ignore_errors=True)
        return record

    def probe(self, cell: Cell, index: int, label: str, cpus: float | None = None) -> dict[str, Any]:
        """Run the calibration probe in `cell`'s image and store its record (probes/NNN.json). The probe
        measures the host: it keeps the run's cpuset but not its CPU quota (`cpus`: a quota for the probe
        alone, to simulate a slower host in tests)."""
        request = replace(
            self._request(Job(cell, 0), name=f"probe-{index:03d}"), entry="probe", cpus=cpus, mem_limit=None
        )
        make_dirs(request)
        started = self.clock()
        outcome = self.backend.execute(request)
        result_path = request.out_dir / RESULT_FILE
        result: Any = None
        reason = None
        try:
            result = read_json(result_path) if result_path.exists() else None
        except HarnessError as exc:
            reason = str(exc)
        if not isinstance(result, dict) or result.get("status") != "ok":
            reason = reason or f"the probe failed (exit code {outcome.exit_code}): {outcome.logs[-300:]}"
            result = result if isinstance(result, dict) else None
        doc = {
            "kind": PROBE_KIND,
            "schema_version": 1,
            "run_id": self.run_id,
            "index": index,
            "label": label,
            "at": utc_iso(started),
            "image": cell.image.name,
            "status": "ok" if reason is None else "failed",
            "reason": reason,
            "runner": {"kind": self.backend.kind, **outcome.runner},
            "telemetry": outcome.telemetry,
            "result": result,
        }
        self.store.write_probe(doc)
        shutil.rmtree(request.in_dir.parent, ignore_errors=True)
        with contextlib.suppress(OSError):  # the scratch folder, unless a job's files are still in it
            request.in_dir.parent.parent.rmdir()
        return doc

    def _request(self, job: Job, name: str | None = None) -> ExecRequest:
        work = self.store.path / ".work" / (name or f"{cell_key(job.cell.cell_id)}__r{job.repeat}")
        shutil.rmtree(work, ignore_errors=True)
        return ExecRequest(
            run_id=self.run_id,
            cell=job.cell,
            repeat=job.repeat,
            in_dir=work / "in",
            out_dir=work / "out",
            timeout_s=self.timeout_s,
            cpus=self.cpus,
            mem_limit=self.mem_limit,
            cpuset=self.cpuset,
            data_dir=self.data_dir,
        )

    def _record(
        self, job: Job, request: ExecRequest, outcome: ExecOutcome, started: float, finished: float
    ) -> dict[str, Any]:
        verdict = classify(request, outcome)
        fields: dict[str, Any] = {
            "status": verdict.status,
            "reason": verdict.reason,
            "exit_code": outcome.exit_code,
            "log_tail": outcome.logs[-LOG_TAIL_CHARS:],
            "runner": {"kind": self.backend.kind, **outcome.runner},
            "started_at": utc_iso(started),
            "finished_at": utc_iso(finished),
            "wall_s": round(max(outcome.wall_s, finished - started), 3),
            "payload": verdict.payload,
        }
        if verdict.problems:
            fields["payload_problems"] = verdict.problems[:20]
        return make_record(self.run_id, job, **fields)


def exit_code_for(records: list[dict[str, Any]], strict: bool) -> int:
    """0: every runnable cell ok; 1: some failed/timed out/OOM (or, with strict, were unavailable)."""
    bad = {"failed", "timeout", "oom"} | ({"unavailable"} if strict else set())
    return 1 if any(r["status"] in bad for r in records) else 0
