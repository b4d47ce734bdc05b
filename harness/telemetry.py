"""Host evidence per execution: what else ran on the host while the payload ran, and what the payload used.

Stdlib only, Linux files only (``/proc``, ``/sys/fs/cgroup``); every reader returns None instead of raising,
so a host without these files (or a harness inside a container without the host's cgroups) records null
fields, never a failed cell.

- ``/proc/stat`` (aggregate ``cpu`` line): host busy = total - idle - iowait, and steal, in clock ticks.
- The target's CPU time: a container's cgroup (v1 ``cpuacct.usage``, v2 ``cpu.stat usage_usec``) with its
  throttling and peak memory, or the docker stats API, or a local process group summed from ``/proc``.
- :class:`Sampler` pairs the two at a fixed interval: per interval, the cores used by *others* are
  (host busy CPU seconds - target CPU seconds) / interval seconds, clipped at 0.
- :func:`wait_for_quiet` waits (bounded) until the host is idle enough before an execution.

Docker (runc) removes a container's cgroup as soon as its last process exits, before the container itself is
removed, so cgroup targets are polled more often than the summary interval (``poll_s``): cumulative figures
(CPU time, peak memory) are those of the last poll, at most ``poll_s`` before the exit.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

PROC = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: how often a cgroup target is polled (docker removes the cgroup at exit: the last poll is what is left)
CGROUP_POLL_S = 0.2
#: the summary's sources
SOURCES = ("cgroup-v1", "cgroup-v2", "docker-stats", "proc", "none")
SUMMARY_KEYS = (
    "source",
    "interval_s",
    "n_samples",
    "host_cpus",
    "wall_s",
    "cpu_time_s",
    "cpu_cores_mean",
    "others_cores_mean",
    "others_cores_max",
    "steal_pct",
    "throttled_s",
    "throttled_periods",
    "container_peak_bytes",
    "loadavg_start",
    "loadavg_end",
    "others_cores_series",
)
#: at most this many per-interval values of others' cores are kept in a record (evenly thinned beyond it)
SERIES_MAX = 600


# ------------------------------------------------------------------------------------------ host: /proc


@dataclass(frozen=True)
class CpuTimes:
    """The aggregate ``cpu`` line of /proc/stat, in clock ticks (guest time is already inside user/nice)."""

    user: int
    nice: int
    system: int
    idle: int
    iowait: int
    irq: int
    softirq: int
    steal: int

    @property
    def total(self) -> int:
        return (
            self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
        )

    @property
    def busy(self) -> int:
        return self.total - self.idle - self.iowait


def clock_ticks() -> int:
    """Clock ticks per second of /proc/stat (USER_HZ; 100 on Linux)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        return 100
    return ticks if ticks > 0 else 100


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None


def parse_proc_stat(text: str) -> CpuTimes | None:
    """The aggregate ``cpu`` line of /proc/stat; None when absent or malformed."""
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "cpu":
            try:
                values = [int(v) for v in parts[1:9]]
            except ValueError:
                return None
            values += [0] * (8 - len(values))  # very old kernels have fewer columns
            return CpuTimes(*values)
    return None


def read_proc_stat(proc: Path = PROC) -> CpuTimes | None:
    text = _read_text(proc / "stat")
    return None if text is None else parse_proc_stat(text)


def host_cpus(proc: Path = PROC) -> int:
    """Number of CPUs the host reports in /proc/stat (``cpuN`` lines); os.cpu_count() without /proc."""
    text = _read_text(proc / "stat")
    if text is not None:
        count = sum(1 for line in text.splitlines() if line.startswith("cpu") and line[3:4].isdigit())
        if count:
            return count
    return os.cpu_count() or 1


def read_loadavg(proc: Path = PROC) -> list[float] | None:
    """[1 min, 5 min, 15 min] load averages; None when unreadable."""
    text = _read_text(proc / "loadavg")
    if text is None:
        return None
    try:
        return [float(v) for v in text.split()[:3]]
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------ targets


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
    text = _read_text(path)
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _read_keyed(path: Path) -> dict[str, int] | None:
    """A flat-keyed cgroup file such as cpu.stat ("key value" per line)."""
    text = _read_text(path)
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


#: what the engine's stats fallback returns (harness.engine.DockerEngine.container_stats)
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
    text = _read_text(path)
    if text is None or ")" not in text:
        return None
    return text[text.rindex(")") + 2 :].split()


# ------------------------------------------------------------------------------------------ the sampler


@dataclass(frozen=True)
class Sample:
    t: float
    host: CpuTimes | None
    target: TargetReading | None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _interval_bounds(good: list[Sample], interval_s: float) -> list[Sample]:
    """Interval boundaries among the samples where host and target were both read: a new boundary once
    ``interval_s`` has passed, the last good sample closes the last interval; a short tail (< half an
    interval) joins the interval before it (tick granularity makes very short intervals noisy)."""
    if len(good) < 2:
        return []
    bounds = [good[0]]
    for sample in good[1:]:
        if sample.t - bounds[-1].t >= interval_s * 0.999:
            bounds.append(sample)
    last = good[-1]
    if last is not bounds[-1] and last.t > bounds[-1].t:
        if len(bounds) >= 2 and last.t - bounds[-1].t < interval_s / 2:
            bounds[-1] = last
        else:
            bounds.append(last)
    return bounds


def summarize(
    samples: list[Sample],
    *,
    source: str,
    interval_s: float,
    host_cpus: int,
    ticks: int,
    loadavg_start: list[float] | None = None,
    loadavg_end: list[float] | None = None,
) -> dict[str, Any]:
    """The telemetry summary (keys: SUMMARY_KEYS) from time-ordered samples (first at start, last at stop)."""
    wall = samples[-1].t - samples[0].t if len(samples) >= 2 else 0.0
    hosts = [s.host for s in samples if s.host is not None]
    steal_pct: float | None = None
    if len(hosts) >= 2 and hosts[-1].total > hosts[0].total:
        steal_pct = 100.0 * (hosts[-1].steal - hosts[0].steal) / (hosts[-1].total - hosts[0].total)

    readings = [s.target for s in samples if s.target is not None]
    cpu_values = [r.cpu_s for r in readings if r.cpu_s is not None]
    throttled = [r for r in readings if r.throttled_s is not None or r.throttled_periods is not None]
    peaks = [r.peak_bytes for r in readings if r.peak_bytes is not None]
    cpu_time = cpu_values[-1] if cpu_values else None

    good = [s for s in samples if s.host is not None and s.target is not None and s.target.cpu_s is not None]
    points = [
        (s.t, s.host.busy, s.target.cpu_s) for s in _interval_bounds(good, interval_s) if s.host and s.target
    ]
    others: list[tuple[float, float]] = []  # (cores, seconds)
    for (t0, busy0, cpu0), (t1, busy1, cpu1) in itertools.pairwise(points):
        dt = t1 - t0
        if dt <= 0 or cpu0 is None or cpu1 is None:
            continue
        host_busy_s = (busy1 - busy0) / ticks
        others.append((max(0.0, (host_busy_s - (cpu1 - cpu0)) / dt), dt))
    span = sum(dt for _, dt in others)
    others_mean = sum(c * dt for c, dt in others) / span if others and span > 0 else None

    return {
        "source": source,
        "interval_s": float(interval_s),
        "n_samples": len(others),
        "host_cpus": int(host_cpus),
        "wall_s": round(wall, 3),
        "cpu_time_s": _round(cpu_time),
        "cpu_cores_mean": _round(cpu_time / wall) if cpu_time is not None and wall > 0 else None,
        "others_cores_mean": _round(others_mean),
        "others_cores_max": _round(max(c for c, _ in others)) if others else None,
        "steal_pct": _round(steal_pct, 3),
        "throttled_s": _round(throttled[-1].throttled_s) if throttled else None,
        "throttled_periods": throttled[-1].throttled_periods if throttled else None,
        "container_peak_bytes": max(peaks) if peaks else None,
        "loadavg_start": loadavg_start,
        "loadavg_end": loadavg_end,
        "others_cores_series": _series([c for c, _ in others]),
    }


def _series(values: list[float]) -> list[float]:
    """Per-interval values, rounded, thinned evenly to at most SERIES_MAX (first and last kept)."""
    if len(values) > SERIES_MAX:
        step = (len(values) - 1) / (SERIES_MAX - 1)
        values = [values[round(i * step)] for i in range(SERIES_MAX)]
    return [round(v, 3) for v in values]


class Sampler:
    """Samples the host's /proc/stat and the target at ``interval_s`` (cgroup targets more often, see
    ``Target.poll_s``) in a daemon thread, with a first reading at ``start`` and a last one at ``stop``, so
    even a sub-second execution has one interval. Never raises from readings; ``stop`` returns the summary.
    """

    def __init__(
        self,
        target: Target | None,
        interval_s: float = 1.0,
        *,
        poll_s: float | None = None,
        proc: Path = PROC,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.target = target
        self.interval_s = float(interval_s)
        target_poll = target.poll_s if target is not None else interval_s
        self.poll_s = float(poll_s) if poll_s is not None else min(self.interval_s, target_poll)
        self._proc = proc
        self._clock = clock
        self._samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loadavg_start: list[float] | None = None
        self._summary: dict[str, Any] | None = None

    @property
    def source(self) -> str:
        return self.target.source if self.target is not None else "none"

    def _read_target(self) -> TargetReading | None:
        if self.target is None:
            return None
        try:
            return self.target.read()
        except Exception:  # telemetry must never fail an execution
            return None

    def _take(self, final: TargetReading | None = None) -> None:
        t = self._clock()
        host = read_proc_stat(self._proc)
        target = final if final is not None else self._read_target()
        with self._lock:
            self._samples.append(Sample(t, host, target))

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            with contextlib.suppress(Exception):
                self._take()

    def start(self) -> None:
        self._loadavg_start = read_loadavg(self._proc)
        self._take()
        self._thread = threading.Thread(target=self._loop, name="tfmh-telemetry", daemon=True)
        self._thread.start()

    def stop(self, final: TargetReading | None = None) -> dict[str, Any]:
        """Stop sampling, take the last reading (``final`` instead of reading the target, e.g. the exact
        figures of a reaped process) and return the summary. Idempotent."""
        if self._summary is not None:
            return self._summary
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._take(final)
        with self._lock:
            samples = list(self._samples)
        self._summary = summarize(
            samples,
            source=self.source,
            interval_s=self.interval_s,
            host_cpus=host_cpus(self._proc),
            ticks=clock_ticks(),
            loadavg_start=self._loadavg_start,
            loadavg_end=read_loadavg(self._proc),
        )
        return self._summary


def null_summary(interval_s: float = 1.0, proc: Path = PROC) -> dict[str, Any]:
    """A summary with no evidence (source "none"): for executions that could not be sampled at all."""
    return summarize(
        [Sample(0.0, None, None)], source="none", interval_s=interval_s, host_cpus=host_cpus(proc), ticks=100
    )


# ------------------------------------------------------------------------------------------ quiet-host gate


@dataclass(frozen=True)
class QuietResult:
    """``others_cores``: busy cores of the host over the last measured interval. ``measured`` is False when
    /proc/stat could not be read (then ``quiet`` is True: there is nothing to wait for)."""

    quiet: bool
    waited_s: float
    others_cores: float
    measured: bool = True


def wait_for_quiet(
    threshold_cores: float,
    timeout_s: float,
    interval_s: float = 1.0,
    *,
    reader: Callable[[], CpuTimes | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    ticks: int | None = None,
) -> QuietResult:
    """Sample /proc/stat every ``interval_s`` until the host's busy cores over one interval are below
    ``threshold_cores`` (quiet) or ``timeout_s`` has passed (not quiet). At least one interval is measured.
    Call it while the harness itself is idle: everything busy counts as others."""
    read = reader if reader is not None else read_proc_stat
    hz = ticks if ticks is not None else clock_ticks()
    start = clock()
    prev = read()
    t_prev = start
    if prev is None:
        return QuietResult(True, 0.0, 0.0, measured=False)
    while True:
        sleep(interval_s)
        cur = read()
        now = clock()
        if cur is None:
            return QuietResult(True, now - start, 0.0, measured=False)
        dt = now - t_prev
        busy = max(0.0, (cur.busy - prev.busy) / hz / dt) if dt > 0 else 0.0
        waited = now - start
        if busy < threshold_cores:
            return QuietResult(True, waited, busy)
        if waited >= timeout_s:
            return QuietResult(False, waited, busy)
        prev, t_prev = cur, now
