"""The host's CPU from ``/proc``: the aggregate ``cpu`` line of /proc/stat, CPU count, load averages, and the
quiet-host gate (:func:`wait_for_quiet`) that waits, bounded, until the host is idle before an execution.

Stdlib only; every reader returns None instead of raising (a host without these files records null fields).
``/proc/stat``: host busy = total - idle - iowait, and steal, in clock ticks.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


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


def read_text(path: Path) -> str | None:
    """A /proc or /sys file's text; None when it cannot be read."""
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
    text = read_text(proc / "stat")
    return None if text is None else parse_proc_stat(text)


def host_cpus(proc: Path = PROC) -> int:
    """Number of CPUs the host reports in /proc/stat (``cpuN`` lines); os.cpu_count() without /proc."""
    text = read_text(proc / "stat")
    if text is not None:
        count = sum(1 for line in text.splitlines() if line.startswith("cpu") and line[3:4].isdigit())
        if count:
            return count
    return os.cpu_count() or 1


def read_loadavg(proc: Path = PROC) -> list[float] | None:
    """[1 min, 5 min, 15 min] load averages; None when unreadable."""
    text = read_text(proc / "loadavg")
    if text is None:
        return None
    try:
        return [float(v) for v in text.split()[:3]]
    except ValueError:
        return None


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
