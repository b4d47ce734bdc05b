"""Host evidence per execution: what else ran on the host while the payload ran, and what the payload used.

Stdlib only, Linux files only (``/proc``, ``/sys/fs/cgroup``); every reader returns None instead of raising,
so a host without these files (or a harness inside a container without the host's cgroups) records null
fields, never a failed cell.

- ``/proc/stat`` (aggregate ``cpu`` line, :mod:`harness.execution.hostcpu`): host busy and steal, in clock
ticks.
- The target's CPU time (:mod:`harness.execution.usage`): a container's cgroup, the docker stats API, or a
local
  process group.
- :class:`Sampler` pairs the two at a fixed interval: per interval, the cores used by *others* are
  (host busy CPU seconds - target CPU seconds) / interval seconds, clipped at 0; :func:`summarize` turns the
  samples into the record's summary.
- :func:`harness.execution.hostcpu.wait_for_quiet` waits (bounded) until the host is idle enough before an
execution.

Docker (runc) removes a container's cgroup as soon as its last process exits, before the container itself is
removed, so cgroup targets are polled more often than the summary interval (``poll_s``): cumulative figures
(CPU time, peak memory) are those of the last poll, at most ``poll_s`` before the exit.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.execution.hostcpu import PROC, CpuTimes, clock_ticks, host_cpus, read_loadavg, read_proc_stat
from harness.execution.usage import Target, TargetReading

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
