"""One `harness run`: settings resolved once, availability, the manifest, rounds of executions with the
calibration probe between them, adaptive rounds until the CI target or the budget, and resume.

The CLI only parses arguments and prints; everything a run does in order lives here.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from harness import __version__
from harness.config import Profile, QuietGate, cpuset_size, parse_duration
from harness.contention import threshold_cores
from harness.errors import ConfigError
from harness.execute import Backend
from harness.hostinfo import host_facts
from harness.plan import Cell, Plan
from harness.runner import Job, Runner, RunObserver, iso, plan_rounds, prepare_cells
from harness.store import RunStore

Doc = dict[str, Any]
DEFAULT_MAX_REPEATS_FACTOR = 4


@dataclass(frozen=True)
class Overrides:
    """What the command line set; None: not given (the profile decides)."""

    repeats: int | None = None
    timeout_s: float | None = None
    cpus: float | None = None
    mem_limit: str | None = None
    cpuset: str | None = None
    margin_pct: float | None = None
    target_ci_pct: float | None = None
    max_repeats: int | None = None
    budget: str | None = None
    quiet_wait_s: float | None = None
    quiet_threshold: float | None = None
    reruns: int | None = None
    probe: bool | None = None


def _pick(cli: Any, profile: Any) -> Any:
    return profile if cli is None else cli


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ConfigError(what)


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs, resolved once from the profile and the command line."""

    profile: str
    repeats: int
    timeout_s: float
    cpus: float | None
    mem_limit: str | None
    cpuset: str | None
    quiet: QuietGate
    margin_pct: float
    target_ci_pct: float | None
    max_repeats: int
    budget_s: float | None
    probe: bool

    @classmethod
    def resolve(cls, name: str, profile: Profile, cli: Overrides) -> RunSettings:
        repeats = _pick(cli.repeats, profile.repeats)
        _check(isinstance(repeats, int) and 1 <= repeats <= 100, f"--repeats: expected 1..100, got {repeats}")
        timeout = _pick(cli.timeout_s, profile.timeout_s)
        _check(
            0 < timeout <= 86400 and math.isfinite(timeout), f"--timeout: expected 1..86400 s, got {timeout}"
        )
        cpus = _pick(cli.cpus, profile.cpus)
        _check(
            cpus is None or (0 < cpus <= 1024 and math.isfinite(cpus)), f"--cpus: expected > 0, got {cpus}"
        )
        cpuset = _pick(cli.cpuset, profile.cpuset)
        if cpuset is not None:
            try:
                cpuset_size(cpuset)
            except ValueError as exc:
                raise ConfigError(f"--cpuset: {exc}") from exc
        margin = _pick(cli.margin_pct, profile.margin_pct)
        _check(0 < margin <= 50 and math.isfinite(margin), f"--margin: expected 0 < PCT <= 50, got {margin}")
        target = _pick(cli.target_ci_pct, profile.target_ci_pct)
        _check(
            target is None or (0 < target <= 100 and math.isfinite(target)),
            f"--target-ci: expected 0 < PCT <= 100, got {target}",
        )
        max_repeats = _pick(cli.max_repeats, profile.max_repeats)
        if max_repeats is None:
            max_repeats = repeats * DEFAULT_MAX_REPEATS_FACTOR if target is not None else repeats
        _check(
            1 <= max_repeats <= 100 and max_repeats >= repeats,
            f"--max-repeats: expected {repeats}..100 (at least the minimum repeats), got {max_repeats}",
        )
        budget = _pick(cli.budget, profile.budget)
        try:
            budget_s = parse_duration(budget) if budget is not None else None
        except ValueError as exc:
            raise ConfigError(f"--budget: {exc}") from exc
        quiet = profile.quiet
        updates: Doc = {}
        if cli.quiet_wait_s is not None:
            _check(0 <= cli.quiet_wait_s <= 3600, f"--quiet-wait: expected 0..3600 s, got {cli.quiet_wait_s}")
            updates["wait_s"] = cli.quiet_wait_s
        if cli.quiet_threshold is not None:
            _check(
                0 < cli.quiet_threshold <= 1,
                f"--quiet-threshold: expected a share of the cores in (0, 1], got {cli.quiet_threshold}",
            )
            updates["threshold"] = cli.quiet_threshold
        if cli.reruns is not None:
            _check(0 <= cli.reruns <= 10, f"--reruns: expected 0..10, got {cli.reruns}")
            updates["reruns"] = cli.reruns
        return cls(
            profile=name,
            repeats=repeats,
            timeout_s=float(timeout),
            cpus=cpus,
            mem_limit=_pick(cli.mem_limit, profile.mem_limit),
            cpuset=cpuset,
            quiet=quiet.model_copy(update=updates),
            margin_pct=float(margin),
            target_ci_pct=target,
            max_repeats=max_repeats,
            budget_s=budget_s,
            probe=_pick(cli.probe, profile.probe),
        )

    def as_manifest(self) -> Doc:
        doc = asdict(self)
        doc["quiet"] = self.quiet.model_dump()
        return doc


def pin_threads(cells: list[Cell], cpuset: str | None) -> list[Cell]:
    """With a cpuset, intra-op threads follow the pinned CPU count (recorded in the cell's params)."""
    if cpuset is None:
        return cells
    n = cpuset_size(cpuset)
    return [replace(c, params={**c.params, "intra_op_threads": n}) for c in cells]


def payload_sha256() -> str:
    """The payload's checksum, computed as the payload does (harness/payload/provenance.py)."""
    from harness.paths import payload_dir

    digest = hashlib.sha256()
    for path in sorted(payload_dir().glob("*.py")):
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass
class Adaptive:
    """How the adaptive rounds ended, for the manifest and the report."""

    rounds: int = 0
    stopped: str = "no target"
    pairs: list[Doc] = field(default_factory=list)


@dataclass
class RunSession:
    settings: RunSettings
    plan: Plan
    cells: list[Cell]
    matrix_path: str
    matrix_sha256: str
    matrix_text: str
    backend: Backend
    store: RunStore
    run_id: str
    engine_version: str | None = None
    shard: str | None = None
    previous: Doc = field(default_factory=dict)
    observer: RunObserver = field(default_factory=RunObserver)
    #: waits for a quiet host (threshold cores, timeout s) -> evidence; None: the host telemetry gate
    gate: Callable[[float, float], Doc] | None = None
    monotonic: Callable[[], float] = time.monotonic
    adaptive: Adaptive = field(default_factory=Adaptive)
    manifest: Doc = field(default_factory=dict)
    _probe_index: int = 0

    # ---------------------------------------------------------------------------------------------- setup

    def prepare(self) -> None:
        """Images/interpreters and devices; then the manifest (written before any execution)."""
        self.cells = pin_threads(prepare_cells(self.backend, self.cells), self.settings.cpuset)
        self.manifest = self._manifest()
        self.store.write_manifest(self.manifest)
        self._probe_index = len(list(self.store.iter_probes()))

    def _manifest(self) -> Doc:
        prev = self.previous
        now = iso(time.time())
        return {
            "schema_version": 1,
            "kind": "tfmh.run-manifest",
            "run_id": self.run_id,
            "profile": self.settings.profile,
            "matrix_path": self.matrix_path,
            "matrix_sha256": self.matrix_sha256,
            "matrix_text": self.matrix_text,
            "command": " ".join(["harness", *sys.argv[1:]]),
            "harness_version": __version__,
            "payload_sha256": payload_sha256(),
            "runner": self.backend.kind,
            "host": host_facts(self.engine_version),
            "baseline": self.plan.baseline,
            "cells": [c.describe() for c in self.cells],
            "repeats": self.settings.repeats,
            "settings": self.settings.as_manifest(),
            "shard": self.shard,
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
        self.manifest["finished_at"] = iso(time.time())
        self.manifest["adaptive"] = asdict(self.adaptive)
        self.store.write_manifest(self.manifest)
        return list(self.store.iter_records())

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
        base = [c for c in runnable if c.image.name == self.plan.baseline]
        candidates = base or runnable
        return candidates[0] if candidates else None

    # ------------------------------------------------------------------------------------------- adaptive

    def _adapt(self, runner: Runner, started: float) -> None:
        s = self.settings
        if s.target_ci_pct is None:
            self.adaptive.stopped = "no target"
            self.adaptive.pairs = self._pair_status()
            return
        by_id = {c.cell_id: c for c in self.cells if c.available}
        while True:
            pairs = self._pair_status()
            self.adaptive.pairs = pairs
            needy = sorted({c for p in pairs if not p["reached"] for c in p["cells"]})
            if not needy:
                self.adaptive.stopped = "target reached"
                return
            counts = self._repeat_counts()
            needy = [c for c in needy if c in by_id and counts.get(c, 0) < s.max_repeats]
            if not needy:
                self.adaptive.stopped = "max repeats"
                return
            estimate = self._round_estimate(needy)
            if s.budget_s is not None and self.monotonic() - started + estimate > s.budget_s:
                self.adaptive.stopped = "budget"
                return
            order = needy if self.adaptive.rounds % 2 else list(reversed(needy))
            jobs = [Job(by_id[c], counts.get(c, 0)) for c in order]
            runner.run(jobs)
            self.adaptive.rounds += 1
            self._probe(runner, f"after adaptive round {self.adaptive.rounds}")

    def _repeat_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for cell_id, repeat in self.store.done():
            counts[cell_id] = max(counts.get(cell_id, 0), repeat + 1)
        return counts

    def _round_estimate(self, cells: list[str]) -> float:
        """Seconds one more round of `cells` should take: the sum of their median wall times so far."""
        walls: dict[str, list[float]] = {}
        for rec in self.store.iter_records():
            if isinstance(rec.get("wall_s"), int | float):
                walls.setdefault(rec["cell_id"], []).append(float(rec["wall_s"]))
        return sum(statistics.median(walls[c]) for c in cells if c in walls)

    def _pair_status(self) -> list[Doc]:
        """Each compared pair (or, without a baseline pair, each cell) against the CI target."""
        from harness import stats

        run = self.store.load()
        ana = stats.analyse_run(run, margin_pct=self.settings.margin_pct)
        target = self.settings.target_ci_pct
        out: list[Doc] = []
        for row in ana.comparisons.to_dict("records"):
            hw = float(row["half_width_pct"])
            out.append(
                {
                    "cells": [str(row["a_cell"]), str(row["b_cell"])],
                    "half_width_pct": None if math.isnan(hw) else round(hw, 3),
                    "reached": target is not None and not math.isnan(hw) and hw <= target,
                }
            )
        paired = {c for p in out for c in p["cells"]}
        st = ana.cells.stats[ana.cells.stats["measured"]]
        for cell_id, step, lo, hi in zip(st.index, st["step_s"], st["ci_lo_s"], st["ci_hi_s"], strict=True):
            if cell_id in paired:
                continue
            step, lo, hi = float(step), float(lo), float(hi)
            hw = (
                max(hi / step - 1, 1 - lo / step) * 100
                if all(map(math.isfinite, (step, lo, hi)))
                else math.nan
            )
            out.append(
                {
                    "cells": [str(cell_id)],
                    "half_width_pct": None if math.isnan(hw) else round(hw, 3),
                    "reached": target is not None and not math.isnan(hw) and hw <= target,
                }
            )
        return out


def _host_gate(threshold: float, timeout_s: float) -> Doc:
    from harness import hostcpu

    result = hostcpu.wait_for_quiet(threshold_cores=threshold, timeout_s=timeout_s)
    return {
        "quiet": bool(result.quiet),
        "waited_s": round(float(result.waited_s), 3),
        "others_cores": round(float(result.others_cores), 3),
        "threshold_cores": round(threshold, 3),
    }
