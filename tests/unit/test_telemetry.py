"""harness.execution.telemetry against recorded /proc and cgroup files (tests/data/telemetry) with known figures."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from harness.execution import hostcpu, telemetry
from harness.execution.hostcpu import CpuTimes, wait_for_quiet
from harness.execution.telemetry import Sample, Sampler, summarize
from harness.execution.usage import (
    CgroupV1Target,
    CgroupV2Target,
    ProcessGroupTarget,
    StatsTarget,
    TargetReading,
    container_target,
    find_cgroup,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "telemetry"
CID = "0123456789abcdef" * 4
snap_a = hostcpu.read_proc_stat(DATA / "proc-a")
snap_b = hostcpu.read_proc_stat(DATA / "proc-b")


def cpu(busy: int, idle: int = 0, steal: int = 0) -> CpuTimes:
    """A /proc/stat reading with `busy` ticks of user time."""
    return CpuTimes(busy, 0, 0, idle, 0, 0, 0, steal)


# ------------------------------------------------------------------------------------------ /proc


def test_proc_stat_snapshots_parse_with_known_deltas():
    assert snap_a == CpuTimes(10000, 50, 3000, 80000, 500, 0, 100, 200)
    assert snap_b is not None and snap_a is not None
    assert (snap_b.total - snap_a.total, snap_b.busy - snap_a.busy, snap_b.steal - snap_a.steal) == (
        610,
        450,
        40,
    )
    assert hostcpu.host_cpus(DATA / "proc-a") == 2
    assert hostcpu.read_loadavg(DATA / "proc-a") == [0.52, 0.61, 0.70]
    assert hostcpu.read_loadavg(DATA / "proc-b") == [1.48, 0.83, 0.74]


def test_missing_or_malformed_proc_files_give_none(tmp_path: Path):
    assert hostcpu.read_proc_stat(tmp_path) is None
    assert hostcpu.read_loadavg(tmp_path) is None
    assert hostcpu.host_cpus(tmp_path) == (os.cpu_count() or 1)
    assert hostcpu.parse_proc_stat("cpu  1 2 x\n") is None
    assert hostcpu.parse_proc_stat("intr 1\n") is None
    assert hostcpu.parse_proc_stat("cpu  1 2 3 4\n") == CpuTimes(1, 2, 3, 4, 0, 0, 0, 0)


def test_the_real_proc_stat_reads():
    now = hostcpu.read_proc_stat()
    if now is None:
        pytest.skip("no /proc/stat on this platform")
    assert now.total > 0 and 0 <= now.busy <= now.total
    assert hostcpu.host_cpus() >= 1


# ------------------------------------------------------------------------------------------ cgroups


def test_cgroup_v1_cgroupfs_layout():
    target = find_cgroup(CID, DATA / "cgroup-v1")
    assert isinstance(target, CgroupV1Target) and target.source == "cgroup-v1"
    assert target.read() == TargetReading(
        cpu_s=12.3456789, throttled_s=1.5, throttled_periods=42, peak_bytes=734003200
    )
    assert find_cgroup("f" * 64, DATA / "cgroup-v1") is None


def test_cgroup_v1_systemd_layout_and_combined_controller(tmp_path: Path):
    root = tmp_path / "cg"
    src = DATA / "cgroup-v1"
    shutil.copytree(
        src / "cpuacct" / "docker" / CID, root / "cpu,cpuacct" / "system.slice" / f"docker-{CID}.scope"
    )
    shutil.copy(
        src / "cpu" / "docker" / CID / "cpu.stat",
        root / "cpu,cpuacct" / "system.slice" / f"docker-{CID}.scope",
    )
    target = find_cgroup(CID, root)
    assert isinstance(target, CgroupV1Target)
    assert target.memory is None  # no memory controller here: peak unknown, not an error
    assert target.read() == TargetReading(
        cpu_s=12.3456789, throttled_s=1.5, throttled_periods=42, peak_bytes=None
    )


def test_cgroup_v2_unified_layout(tmp_path: Path):
    target = find_cgroup(CID, DATA / "cgroup-v2")
    assert isinstance(target, CgroupV2Target) and target.source == "cgroup-v2"
    assert target.read() == TargetReading(
        cpu_s=9.876543, throttled_s=0.25, throttled_periods=7, peak_bytes=524288000
    )
    # an older kernel without memory.peak: peak is null
    root = tmp_path / "v2"
    shutil.copytree(DATA / "cgroup-v2", root)
    (root / "system.slice" / f"docker-{CID}.scope" / "memory.peak").unlink()
    again = find_cgroup(CID, root)
    assert again is not None and again.read() == TargetReading(9.876543, 0.25, 7, None)


def test_cgroup_that_vanished_reads_none(tmp_path: Path):
    root = tmp_path / "v1"
    shutil.copytree(DATA / "cgroup-v1", root)
    target = find_cgroup(CID, root)
    assert target is not None
    shutil.rmtree(root / "cpuacct")  # docker removes the cgroup when the container's processes exit
    assert target.read() is None


def test_container_target_falls_back_to_stats_then_none(tmp_path: Path):
    docs = iter(
        [
            {"cpu_ns": 2_000_000_000, "throttled_periods": 3, "throttled_ns": 10**8, "mem_usage_bytes": 100},
            {"cpu_ns": 3_000_000_000, "mem_usage_bytes": 300, "mem_peak_bytes": None},
            {"cpu_ns": 0},
        ]
    )
    target = container_target(CID, tmp_path, stats=lambda: next(docs))
    assert isinstance(target, StatsTarget) and target.source == "docker-stats"
    assert target.read() == TargetReading(2.0, 0.1, 3, 100)
    assert target.read() == TargetReading(3.0, None, None, 300)
    assert target.read() is None  # a stopped container reports 0 CPU
    assert container_target(CID, tmp_path) is None

    def boom() -> None:
        raise RuntimeError("engine gone")

    assert StatsTarget(boom).read() is None


def test_process_group_sums_members_only():
    target = ProcessGroupTarget(100, proc=DATA / "procgroup")
    reading = target.read()
    ticks = hostcpu.clock_ticks()
    page = os.sysconf("SC_PAGE_SIZE")
    assert reading == TargetReading(cpu_s=(330 + 125) / ticks, peak_bytes=35000 * page)
    assert ProcessGroupTarget(999, proc=DATA / "procgroup").read() is None


# ------------------------------------------------------------------------------------------ summary


def test_summary_of_one_interval_from_the_recorded_snapshots():
    assert snap_a is not None and snap_b is not None
    samples = [
        Sample(10.0, snap_a, TargetReading(cpu_s=1.0, throttled_s=0.0, throttled_periods=0, peak_bytes=1000)),
        Sample(13.0, snap_b, TargetReading(cpu_s=4.3, throttled_s=0.5, throttled_periods=5, peak_bytes=5000)),
    ]
    summary = summarize(
        samples,
        source="cgroup-v1",
        interval_s=1.0,
        host_cpus=2,
        ticks=100,
        loadavg_start=[0.52, 0.61, 0.7],
        loadavg_end=[1.48, 0.83, 0.74],
    )
    assert tuple(summary) == telemetry.SUMMARY_KEYS
    assert summary == {
        "source": "cgroup-v1",
        "interval_s": 1.0,
        "n_samples": 1,
        "host_cpus": 2,
        "wall_s": 3.0,
        "cpu_time_s": 4.3,
        "cpu_cores_mean": round(4.3 / 3, 4),
        "others_cores_mean": 0.4,  # (4.50 s host busy - 3.30 s target) / 3 s
        "others_cores_max": 0.4,
        "steal_pct": round(100 * 40 / 610, 3),
        "throttled_s": 0.5,
        "throttled_periods": 5,
        "container_peak_bytes": 5000,
        "loadavg_start": [0.52, 0.61, 0.7],
        "loadavg_end": [1.48, 0.83, 0.74],
        "others_cores_series": [0.4],
    }


def test_long_series_are_thinned_evenly():
    values = [i / 1000 for i in range(1500)]
    series = telemetry._series(values)
    assert len(series) == telemetry.SERIES_MAX and series[0] == 0.0 and series[-1] == 1.499
    assert series == sorted(series)


def test_intervals_are_clipped_weighted_and_end_at_the_last_target_reading():
    ticks = 100
    # polls every 0.5 s, summary interval 1 s: intervals [0,1] [1,2] [2,3.2] (a 0.2 s tail joins the last)
    samples = [
        Sample(0.0, cpu(0), TargetReading(cpu_s=0.0)),
        Sample(0.5, cpu(100), TargetReading(cpu_s=0.5)),
        Sample(1.0, cpu(250), TargetReading(cpu_s=1.0)),  # [0,1]: host 2.5 s busy, target 1.0 -> 1.5 cores
        Sample(
            2.0, cpu(300), TargetReading(cpu_s=2.0)
        ),  # [1,2]: host 0.5, target 1.0 -> -0.5 -> clipped to 0
        Sample(3.0, cpu(450), TargetReading(cpu_s=3.0)),
        Sample(3.2, cpu(494), TargetReading(cpu_s=3.2)),  # [2,3.2]: host 1.94, target 1.2 -> 0.74/1.2 cores
        Sample(3.4, cpu(560), None),  # stop(): the cgroup is already gone -> no interval, but the wall counts
    ]
    s = summarize(samples, source="cgroup-v1", interval_s=1.0, host_cpus=2, ticks=ticks)
    assert s["n_samples"] == 3
    assert s["others_cores_max"] == 1.5
    assert s["others_cores_mean"] == round((1.5 * 1 + 0 * 1 + 0.74) / 3.2, 4)
    assert s["wall_s"] == 3.4
    assert s["cpu_time_s"] == 3.2
    assert s["cpu_cores_mean"] == round(3.2 / 3.4, 4)
    assert s["steal_pct"] == 0.0
    assert s["container_peak_bytes"] is None and s["throttled_s"] is None


def test_no_target_means_null_cpu_fields_but_host_facts():
    samples = [Sample(0.0, cpu(0, idle=100, steal=0), None), Sample(2.0, cpu(100, idle=200, steal=50), None)]
    s = summarize(samples, source="none", interval_s=1.0, host_cpus=2, ticks=100)
    assert s["n_samples"] == 0 and s["source"] == "none"
    assert s["cpu_time_s"] is None and s["cpu_cores_mean"] is None
    assert s["others_cores_mean"] is None and s["others_cores_max"] is None
    assert s["steal_pct"] == 20.0  # 50 of 250 ticks


class CountingTarget:
    source = "proc"
    poll_s = 1.0

    def __init__(self) -> None:
        self.cpu = 0.0

    def read(self) -> TargetReading | None:
        self.cpu += 0.01
        return TargetReading(cpu_s=self.cpu)


def test_sampler_sub_second_execution_has_one_interval():
    sampler = Sampler(CountingTarget(), interval_s=1.0, proc=DATA / "proc-a")
    sampler.start()
    summary = sampler.stop(TargetReading(cpu_s=0.5, peak_bytes=123))
    assert tuple(summary) == telemetry.SUMMARY_KEYS
    assert summary["n_samples"] == 1
    assert summary["source"] == "proc" and summary["host_cpus"] == 2
    assert summary["cpu_time_s"] == 0.5 and summary["container_peak_bytes"] == 123
    assert summary["others_cores_mean"] == 0.0  # the recorded /proc/stat does not move: clipped at 0
    assert summary["loadavg_start"] == [0.52, 0.61, 0.7]
    assert sampler.stop() is summary  # idempotent


def test_sampler_thread_samples_at_its_poll_rate():
    target = CountingTarget()
    sampler = Sampler(target, interval_s=0.05, proc=DATA / "proc-a")
    sampler.start()
    time.sleep(0.4)
    summary = sampler.stop()
    assert summary["n_samples"] >= 3
    assert summary["cpu_time_s"] is not None and summary["cpu_time_s"] >= 0.04


def test_sampler_survives_a_failing_target():
    class Broken:
        source = "cgroup-v1"
        poll_s = 0.01

        def read(self) -> TargetReading | None:
            raise OSError("gone")

    sampler = Sampler(Broken(), interval_s=0.02, proc=DATA / "proc-a")
    sampler.start()
    time.sleep(0.05)
    summary = sampler.stop()
    assert summary["source"] == "cgroup-v1" and summary["cpu_time_s"] is None and summary["n_samples"] == 0
    with pytest.raises(ValueError):
        Sampler(None, interval_s=0)


# ------------------------------------------------------------------------------------------ quiet gate


class FakeHost:
    """busy ticks per 1 s interval, with a fake clock advanced by sleep()."""

    def __init__(self, busy_per_interval: list[int]) -> None:
        self.now = 100.0
        self.busy = 0
        self.steps = iter(busy_per_interval)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.busy += next(self.steps)

    def read(self) -> CpuTimes:
        return cpu(self.busy)


def test_gate_returns_at_the_first_quiet_interval():
    host = FakeHost([150, 120, 20, 500])
    result = wait_for_quiet(0.3, 30, 1.0, reader=host.read, clock=host.clock, sleep=host.sleep, ticks=100)
    assert result == hostcpu.QuietResult(quiet=True, waited_s=3.0, others_cores=0.2)


def test_gate_gives_up_at_the_timeout():
    host = FakeHost([150] * 10)
    result = wait_for_quiet(0.3, 2.5, 1.0, reader=host.read, clock=host.clock, sleep=host.sleep, ticks=100)
    assert result == hostcpu.QuietResult(quiet=False, waited_s=3.0, others_cores=1.5)


def test_gate_measures_one_interval_even_with_no_wait_and_handles_no_proc():
    host = FakeHost([180])
    result = wait_for_quiet(0.3, 0, 1.0, reader=host.read, clock=host.clock, sleep=host.sleep, ticks=100)
    assert not result.quiet and result.others_cores == 1.8 and result.waited_s == 1.0
    unknown = wait_for_quiet(0.3, 5, reader=lambda: None, clock=host.clock, sleep=host.sleep)
    assert unknown.quiet and not unknown.measured


def test_import_has_no_side_effects():
    import importlib
    import threading

    before = threading.active_count()
    importlib.reload(telemetry)
    assert threading.active_count() == before
