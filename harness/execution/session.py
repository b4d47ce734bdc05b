"""One `harness run`, in order: resume or a new run folder, the availability step (shared with `harness
plan`), the data, the images, the manifest (written before any execution), rounds of executions with the
calibration probe between them, adaptive rounds until the CI target or the budget; at the end the run's
analysis, stored beside the records (`harness.analysis.stored`).

The CLI parses arguments, calls ``run_matrix`` and prints what it returns.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.digest import files_sha256
from harness.errors import ConfigError
from harness.execution.adaptive import Adaptive, pair_status, repeat_counts, round_estimate
from harness.execution.availability import check_cells, make_cells
from harness.execution.backends import open_backend
from harness.execution.contention import threshold_cores
from harness.execution.datasets import DataSource, prepare_data
from harness.execution.execute import Backend
from harness.execution.hostinfo import host_facts
from harness.execution.runner import Job, Runner, RunObserver, exit_code_for, plan_rounds
from harness.execution.settings import RunOptions, RunSettings
from harness.matrix.config import cpuset_size
from harness.matrix.params import format_assignments
from harness.matrix.plan import Cell
from harness.matrix.source import MatrixSource
from harness.results.resultdocs import MANIFEST_KIND
from harness.results.store import RunStore, new_run_id, resolve_run
from harness.timestamps import utc_iso

if TYPE_CHECKING:
    from harness.analysis.document import AnalysisDoc

Doc = dict[str, Any]


def pin_threads(cells: list[Cell], cpuset: str | None) -> list[Cell]:
    """With a cpuset, intra-op threads follow the pinned CPU count (recorded in the cell's params)."""
    if cpuset is None:
        return cells
    n = cpuset_size(cpuset)
    return [replace(c, params={**c.params, "intra_op_threads": n}) for c in cells]


def payload_sha256() -> str:
    """The payload's checksum, computed as the payload does (harness/payload/provenance.py)."""
    from harness.paths import payload_dir

    return files_sha256(sorted(payload_dir().glob("*.py")))


def open_store(source: MatrixSource, results_dir: Path, resume: str | None) -> tuple[RunStore, str, Doc]:
    """(store, run id, the resumed run's manifest or {}): a new run folder, or the run to continue, which
    must come from the same matrix text, profile and ``--param`` values."""
    if resume is None:
        run_id = new_run_id(source.profile, time.time(), secrets.token_hex(3))
        return RunStore(results_dir / run_id), run_id, {}
    store = RunStore(resolve_run(results_dir, resume))
    previous = store.read_manifest()
    if previous.get("matrix_sha256") != source.sha256 or previous.get("profile") != source.profile:
        raise ConfigError(f"--resume {resume}: run was made from another matrix file or profile")
    made_with = previous.get("params") or {}
    if made_with != source.params:
        given = format_assignments(made_with) or "no --param"
        raise ConfigError(f"--resume {resume}: run was made with {given}; resume it with the same")
    return store, str(previous["run_id"]), previous


@dataclass
class RunSession:
    source: MatrixSource
    settings: RunSettings
    backend: Backend
    store: RunStore
    run_id: str
    #: where the data is downloaded to (and images are cached)
    cache_dir: Path
    #: ``--data-dir``: a folder with a copy of the data; None: the cache
    data_dir: Path | None = None
    #: the resumed run's manifest; {}: a new run
    previous: Doc = field(default_factory=dict)
    observer: RunObserver = field(default_factory=RunObserver)
    #: waits for a quiet host (threshold cores, timeout s) -> evidence; None: the host telemetry gate
    gate: Callable[[float, float], Doc] | None = None
    #: where the data comes from and what it must hash to; None: the pinned download
    data_source: DataSource | None = None
    monotonic: Callable[[], float] = time.monotonic
    adaptive: Adaptive = field(default_factory=Adaptive)
    manifest: Doc = field(default_factory=dict)
    cells: list[Cell] = field(default_factory=list)
    #: the host folder the payload reads its data from (after ``prepare``)
    data_host: Path | None = None
    #: the finished run's analysis (stored as `<run>/analysis.json`); None until `run` returns
    analysis: AnalysisDoc | None = None
    _probe_index: int = 0

    @classmethod
    def open(
        cls,
        source: MatrixSource,
        settings: RunSettings,
        options: RunOptions,
        backend: Backend,
        **kwargs: Any,
    ) -> RunSession:
        """A new run, or the one ``options.resume`` names (checked against the matrix and profile)."""
        store, run_id, previous = open_store(source, options.results_dir, options.resume)
        return cls(
            source,
            settings,
            backend,
            store,
            run_id,
            cache_dir=options.cache(),
            data_dir=options.data_dir,
            previous=previous,
            **kwargs,
        )

    # ---------------------------------------------------------------------------------------------- setup

    def prepare(self) -> None:
        """Availability, data, images; then the manifest (written before any execution)."""
        cells = check_cells(self.backend, self.source.cells)
        cells, data = prepare_data(
            cells, self.cache_dir, data_dir=self.data_dir, source=self.data_source, on_log=self.observer.note
        )
        self.data_host = data.data_dir if data is not None and data.available else self.data_dir
        self.cells = pin_threads(make_cells(self.backend, cells), self.settings.cpuset)
        self.manifest = self._manifest()
        self.store.write_manifest(self.manifest)
        self._probe_index = len(list(self.store.iter_probes()))

    def _manifest(self) -> Doc:
        prev = self.previous
        now = utc_iso(time.time())
        return {
            "schema_version": 1,
            "kind": MANIFEST_KIND,
            "run_id": self.run_id,
            "profile": self.settings.profile,
            "matrix_path": str(self.source.path),
            "matrix_sha256": self.source.sha256,
            "matrix_text": self.source.text,
            "command": " ".join(["harness", *sys.argv[1:]]),
            "harness_version": __version__,
            "payload_sha256": payload_sha256(),
            "runner": self.backend.kind,
            "host": host_facts(self.backend.engine_version()),
            "baseline": self.source.plan.baseline,
            "cells": [c.describe() for c in self.cells],
            "repeats": self.settings.repeats,
            "settings": self.settings.as_manifest(),
            "shard": self.source.shard,
            "params": self.source.params,
            "started_at": prev.get("started_at") or now,
            "resumed_at": [*prev.get("resumed_at", []), now] if prev else [],
            "finished_at": None,
        }

    def _runner(self) -> Runner:
        s = self.settings
        gate: Callable[[], Doc] | None = None
        if s.quiet.wait_s > 0:
            wait = self.gate or _host_gate
            limit = threshold_cores(s.quiet, None)
            gate = lambda: wait(limit, s.quiet.wait_s)  # noqa: E731
        return Runner(
            self.backend,
            self.store,
            self.run_id,
            s.timeout_s,
            cpus=s.cpus,
            mem_limit=s.mem_limit,
            cpuset=s.cpuset,
            data_dir=self.data_host,
            observer=self.observer,
            quiet=s.quiet,
            gate=gate,
        )

    # ------------------------------------------------------------------------------------------------ run

    def run(self) -> list[Doc]:
        """Minimum repeats in interleaved rounds, then adaptive rounds; a probe before, between, after."""
        runner = self._runner()
        started = self.monotonic()
        rounds = plan_rounds(self.cells, self.settings.repeats, self.store.done())
        total = sum(len(r) for r in rounds)
        self.observer.start(total)
        if rounds:
            self._probe(runner, "start")
        for n, jobs in enumerate(rounds, 1):
            runner.run(jobs, announce=False)
            self._probe(runner, f"after round {n}")
        self._adapt(runner, started)
        self.manifest["finished_at"] = utc_iso(time.time())
        self.manifest["adaptive"] = asdict(self.adaptive)
        self.store.write_manifest(self.manifest)
        from harness.analysis.stored import refresh  # pandas: only once the run is done

        run = self.store.load()
        self.analysis = refresh(run)
        return run.records

    def _probe(self, runner: Runner, label: str) -> None:
        if not self.settings.probe:
            return
        cell = self._probe_cell()
        if cell is None:
            return
        self.observer.phase("calibration probe", label)
        runner.probe(cell, self._probe_index, label)
        self._probe_index += 1

    def _probe_cell(self) -> Cell | None:
        runnable = [c for c in self.cells if c.available and c.device == "cpu"]
        base = [c for c in runnable if c.image.name == self.source.plan.baseline]
        candidates = base or runnable
        return candidates[0] if candidates else None

    # ------------------------------------------------------------------------------------------- adaptive

    def _adapt(self, runner: Runner, started: float) -> None:
        s = self.settings
        if s.target_ci_pct is None:
            self.adaptive.stopped = "no target"
            self.adaptive.pairs = pair_status(self.store, s.margin_pct, s.target_ci_pct)
            return
        by_id = {c.cell_id: c for c in self.cells if c.available}
        while True:
            pairs = pair_status(self.store, s.margin_pct, s.target_ci_pct)
            self.adaptive.pairs = pairs
            needy = sorted({c for p in pairs if not p["reached"] for c in p["cells"]})
            if not needy:
                self.adaptive.stopped = "target reached"
                return
            counts = repeat_counts(self.store)
            needy = [c for c in needy if c in by_id and counts.get(c, 0) < s.max_repeats]
            if not needy:
                self.adaptive.stopped = "max repeats"
                return
            estimate = round_estimate(self.store, needy)
            if s.budget_s is not None and self.monotonic() - started + estimate > s.budget_s:
                self.adaptive.stopped = "budget"
                return
            order = needy if self.adaptive.rounds % 2 else list(reversed(needy))
            jobs = [Job(by_id[c], counts.get(c, 0)) for c in order]
            runner.run(jobs)
            self.adaptive.rounds += 1
            self._probe(runner, f"after adaptive round {self.adaptive.rounds}")


@dataclass(frozen=True)
class RunResult:
    """What a run left behind, for the CLI to print."""

    run_id: str
    path: Path
    records: list[Doc]
    settings: RunSettings
    adaptive: Adaptive
    #: the run's analysis (what the summary shows); None when interrupted
    analysis: AnalysisDoc | None = None
    #: Ctrl-C: the results so far are kept (resumable); how many executions were done, containers removed
    interrupted: bool = False
    done: int = 0
    removed: int = 0

    def exit_code(self, strict: bool) -> int:
        """0: every runnable cell ok; 1: some failed/timed out/OOM (or, with strict, were unavailable)."""
        return exit_code_for([r for r in self.records if not r.get("rerun")], strict)


def run_matrix(
    source: MatrixSource,
    settings: RunSettings,
    options: RunOptions,
    observer: RunObserver,
    backend: Backend | None = None,
) -> RunResult:
    """`harness run`: the backend the options name (or ``backend``), then the session from start to end.
    Nothing is written before the settings, the options and the backend are in order."""
    backend = open_backend(options, observer) if backend is None else backend
    session = RunSession.open(source, settings, options, backend, observer=observer)
    observer.phase("build images")
    session.prepare()
    try:
        records = session.run()
    except KeyboardInterrupt:
        removed = backend.cleanup()
        done = len(session.store.done())
        return RunResult(
            session.run_id, session.store.path, [], settings, session.adaptive, None, True, done, removed
        )
    return RunResult(
        session.run_id, session.store.path, records, settings, session.adaptive, session.analysis
    )


def _host_gate(threshold: float, timeout_s: float) -> Doc:
    from harness.execution import hostcpu

    result = hostcpu.wait_for_quiet(threshold_cores=threshold, timeout_s=timeout_s)
    return {
        "quiet": bool(result.quiet),
        "waited_s": round(float(result.waited_s), 3),
        "others_cores": round(float(result.others_cores), 3),
        "threshold_cores": round(threshold, 3),
    }
