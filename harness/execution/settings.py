"""A run's settings, resolved once: the profile's values, the command line's where it says something
(an explicit value always wins, 0 and "" included), every value checked with a message naming its
option. ``RunSettings`` goes into the manifest; ``RunOptions`` says how and where the run executes."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.matrix.config import MEM_LIMIT_RE, Profile, QuietGate, cpuset_size, parse_duration

Doc = dict[str, Any]
DEFAULT_MAX_REPEATS_FACTOR = 4
RUNNERS = ("docker", "local")


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
        mem_limit = _pick(cli.mem_limit, profile.mem_limit)
        _check(
            mem_limit is None or re.fullmatch(MEM_LIMIT_RE, mem_limit) is not None,
            f"--memory: expected bytes or a number with k, m or g (e.g. 4g), got {mem_limit!r}",
        )
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
            mem_limit=mem_limit,
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


@dataclass(frozen=True)
class RunOptions:
    """How and where a run executes: command-line only (no profile counterpart), checked on creation."""

    results_dir: Path = Path("results")
    runner: str = "docker"
    #: ``--python`` values (``PATH`` or ``IMAGE=PATH``) for the local runner
    python: tuple[str, ...] = ()
    #: a folder with a copy of the data (mnist.npz); None: the cache (downloaded once)
    data_dir: Path | None = None
    #: None: the default cache folder
    cache_dir: Path | None = None
    #: a run id or path to continue; None: a new run
    resume: str | None = None
    #: stream every build log line
    verbose: bool = False

    def __post_init__(self) -> None:
        _check(self.runner in RUNNERS, f"--runner: expected one of {', '.join(RUNNERS)}, got {self.runner!r}")
        _check(
            self.resume is None or bool(self.resume.strip()),
            "--resume: expected a run id or path, got an empty string",
        )
        _check(self.data_dir is None or self.data_dir.is_dir(), f"--data-dir {self.data_dir}: no such folder")

    def cache(self) -> Path:
        from harness import cachedirs

        return cachedirs.root(self.cache_dir)
