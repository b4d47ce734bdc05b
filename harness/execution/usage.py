"""What one execution used so far (CPU time, throttling, peak memory): the telemetry *targets*.

- a container's cgroup (v1 ``cpuacct.usage``, v2 ``cpu.stat usage_usec``) with its throttling and peak memory,
- or the docker stats API (when the host's cgroup files are not visible),
- or a local process group summed from ``/proc``.

Stdlib only; ``read`` returns None instead of raising. Docker (runc) removes a container's cgroup as soon as
its last process exits, so cgroup targets are polled often (``poll_s``; see
``harness.execution.telemetry.Sampler``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from harness.execution.hostcpu import PROC, clock_ticks, read_text

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: how often a cgroup target is polled (docker removes the cgroup at exit: the last poll is what is left)
CGROUP_POLL_S = 0.2


@dataclass(frozen=True)
class TargetReading:
    """Cumulative figures of the execution at one moment (None: not known from this source)."""

    cpu_s: float | None = None
    throttled_s: float | None = None
    throttled_periods: int | None = None
    peak_bytes: int | None = None


class Target(Protocol):
    """What the execution used so far. ``read`` returns None when it cannot be read (any more)."""

    @property
    def source(self) -> str: ...

    @property
    def poll_s(self) -> float: ...

    def read(self) -> TargetReading | None: ...


def _read_int(path: Path) -> int | None:
    text = read_text(path)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _read_keyed(path: Path) -> dict[str, int] | None:
    """A flat-keyed cgroup file such as cpu.stat ("key value" per line)."""
    text = read_text(path)
    if text is None:
        return None
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            with contextlib.suppress(ValueError):
                out[parts[0]] = int(parts[1])
    return out


@dataclass(frozen=True)
class CgroupV1Target:
    """A container's cgroup v1 directories (cpuacct, cpu, memory controllers)."""

    cpuacct: Path
    cpu: Path | None
    memory: Path | None
    source: str = "cgroup-v1"
    poll_s: float = CGROUP_POLL_S

    def read(self) -> TargetReading | None:
        usage = _read_int(self.cpuacct / "cpuacct.usage")
        if usage is None:
            return None
        stat = _read_keyed(self.cpu / "cpu.stat") if self.cpu is not None else None
        peak = _read_int(self.memory / "memory.max_usage_in_bytes") if self.memory is not None else None
        throttled_ns = stat.get("throttled_time") if stat else None
        return TargetReading(
            cpu_s=usage / 1e9,
            throttled_s=None if throttled_ns is None else throttled_ns / 1e9,
            throttled_periods=stat.get("nr_throttled") if stat else None,
            peak_bytes=peak,
        )


@dataclass(frozen=True)
class CgroupV2Target:
    """A container's cgroup v2 directory (unified hierarchy)."""

    path: Path
    source: str = "cgroup-v2"
    poll_s: float = CGROUP_POLL_S

    def read(self) -> TargetReading | None:
        stat = _read_keyed(self.path / "cpu.stat")
        if not stat or "usage_usec" not in stat:
            return None
        throttled_us = stat.get("throttled_usec")
        return TargetReading(
            cpu_s=stat["usage_usec"] / 1e6,
            throttled_s=None if throttled_us is None else throttled_us / 1e6,
            throttled_periods=stat.get("nr_throttled"),
            peak_bytes=_read_int(self.path / "memory.peak"),  # kernels before 5.19 have none
        )


#: what the engine's stats fallback returns (harness.images.engine.DockerEngine.container_stats)
StatsFn = Callable[[], Mapping[str, Any] | None]


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class StatsTarget:
    """The docker stats API (when the host's cgroup files are not visible, e.g. a harness in a container).
    Peak memory is the engine's max_usage (cgroup v1) or the highest usage seen."""

    stats: StatsFn
    source: str = "docker-stats"
    poll_s: float = 1.0
    _peak: int | None = None

    def read(self) -> TargetReading | None:
        try:
            doc = self.stats()
        except Exception:  # the fallback must never fail an execution
            return None
        if not doc:
            return None
        cpu_ns = _int_or_none(doc.get("cpu_ns"))
        if not cpu_ns:  # a stopped container reports 0
            return None
        for key in ("mem_peak_bytes", "mem_usage_bytes"):
            value = _int_or_none(doc.get(key))
            if value:
                self._peak = max(self._peak or 0, value)
        throttled_ns = _int_or_none(doc.get("throttled_ns"))
        return TargetReading(
            cpu_s=cpu_ns / 1e9,
            throttled_s=None if throttled_ns is None else throttled_ns / 1e9,
            throttled_periods=_int_or_none(doc.get("throttled_periods")),
            peak_bytes=self._peak,
        )


def _first_dir(candidates: list[Path]) -> Path | None:
    return next((p for p in candidates if p.is_dir()), None)


def find_cgroup(container_id: str, cgroup_root: Path = CGROUP_ROOT) -> CgroupV1Target | CgroupV2Target | None:
    """The cgroup of a running container: v2 (unified) when ``cgroup.controllers`` is at the root, else v1
    (cgroupfs driver ``docker/<id>`` or systemd driver ``system.slice/docker-<id>.scope``); None if absent."""
    rels = [Path("docker") / container_id, Path("system.slice") / f"docker-{container_id}.scope"]
    if (cgroup_root / "cgroup.controllers").is_file():
        found = _first_dir([cgroup_root / rel for rel in reversed(rels)])
        return None if found is None else CgroupV2Target(found)

    def controller(*names: str) -> Path | None:
        return _first_dir([cgroup_root / name / rel for rel in rels for name in names])

    cpuacct = controller("cpuacct", "cpu,cpuacct", "cpuacct,cpu")
    if cpuacct is None:
        return None
    return CgroupV1Target(cpuacct, controller("cpu", "cpu,cpuacct", "cpuacct,cpu"), controller("memory"))


def container_target(
    container_id: str, cgroup_root: Path = CGROUP_ROOT, stats: StatsFn | None = None
) -> Target | None:
    """The container's cgroup, else the stats API fallback, else None (the summary's fields are null)."""
    found = find_cgroup(container_id, cgroup_root)
    if found is not None:
        return found
    return StatsTarget(stats) if stats is not None else None


@dataclass
class ProcessGroupTarget:
    """All processes of a process group (the local runner starts the payload in a new session): CPU time
    utime+stime+cutime+cstime summed over /proc/<pid>/stat, peak = highest summed RSS seen."""

    pgid: int
    proc: Path = PROC
    source: str = "proc"
    poll_s: float = 1.0
    _peak: int | None = None

    def read(self) -> TargetReading | None:
        ticks = clock_ticks()
        page = _page_size()
        try:
            entries = [e for e in os.listdir(self.proc) if e.isdigit()]
        except OSError:
            return None
        found = False
        cpu_ticks = 0
        rss = 0
        for pid in entries:
            fields = _stat_fields(self.proc / pid / "stat")
            if fields is None or len(fields) < 22:
                continue
            try:
                if int(fields[2]) != self.pgid:
                    continue
                cpu_ticks += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
                rss += int(fields[21]) * page
            except ValueError:
                continue
            found = True
        if not found:
            return None
        self._peak = max(self._peak or 0, rss)
        return TargetReading(cpu_s=cpu_ticks / ticks, peak_bytes=self._peak)


def _page_size() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 4096


def _stat_fields(path: Path) -> list[str] | None:
    """/proc/<pid>/stat after the command name: fields[0] is the state, [2] pgrp, [11:15] the times,
    [21] rss in pages (field numbers in proc(5) minus 3)."""
    text = read_text(path)
    if text is None or ")" not in text:
        return None
    return text[text.rindex(")") + 2 :].split()
