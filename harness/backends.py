"""Backends that execute the payload: in a fresh container per execution (docker) or in an existing
interpreter (local). Both implement harness.execute.Backend."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness import telemetry
from harness.config import ImageSpec
from harness.engine import ContainerRequest, DockerEngine, Mount
from harness.errors import BuildError, ConfigError
from harness.execute import RESULT_FILE, SPEC_FILE, Availability, ExecOutcome, ExecRequest
from harness.images import ImageStatus
from harness.paths import payload_dir
from harness.plan import Cell

PAYLOAD_MOUNT = "/opt/tfmh/payload"
IN_MOUNT = "/in"
OUT_MOUNT = "/out"
DATA_MOUNT = "/data"
CONTAINER_USER = "1000:1000"
LOG_LIMIT = 64 * 1024


#: seconds between telemetry summary intervals (harness.telemetry.Sampler)
TELEMETRY_INTERVAL_S = 1.0
#: how often the local runner checks whether the payload has exited
LOCAL_POLL_S = 0.05


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


def parse_cpuset(cpuset: str) -> set[int]:
    """CPUs of a cpuset list such as "0-1,4" (docker --cpuset-cpus syntax)."""
    cpus: set[int] = set()
    for part in cpuset.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if last < first:
            raise ValueError(f"cpuset {cpuset!r}: range {part!r} runs backwards")
        cpus.update(range(first, last + 1))
    if not cpus:
        raise ValueError(f"cpuset {cpuset!r} names no CPU")
    return cpus


@dataclass
class _ContainerTelemetry:
    """A ContainerMonitor that samples the container's cgroup (or the stats API) while it runs."""

    engine: DockerEngine
    interval_s: float
    cgroup_root: Path
    sampler: telemetry.Sampler | None = None
    summary: dict[str, Any] | None = None

    def started(self, container_id: str) -> None:
        def stats() -> dict[str, int | None] | None:
            return self.engine.container_stats(container_id)

        target = telemetry.container_target(container_id, self.cgroup_root, stats=stats)
        self.sampler = telemetry.Sampler(target, self.interval_s)
        self.sampler.start()

    def finished(self, container_id: str) -> None:
        self.close()

    def close(self) -> dict[str, Any] | None:
        if self.summary is None and self.sampler is not None:
            self.summary = self.sampler.stop()
        return self.summary


def _unique_images(cells: list[Cell]) -> list[ImageSpec]:
    seen: dict[str, ImageSpec] = {}
    for cell in cells:
        seen.setdefault(cell.image.name, cell.image)
    return list(seen.values())


@dataclass
class DockerBackend:
    """Each execution in a fresh container: no network, non-root, no privileges, read-only payload/data."""

    engine: DockerEngine
    cache_dir: Path
    data_dir: Path | None = None
    payload: Path = field(default_factory=payload_dir)
    on_log: Callable[[str], None] = lambda line: None
    labels: dict[str, str] = field(default_factory=dict)
    #: host evidence per execution (harness.telemetry); None: do not sample
    telemetry_interval_s: float | None = TELEMETRY_INTERVAL_S
    cgroup_root: Path = telemetry.CGROUP_ROOT
    kind: str = "docker"
    _images: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    _python: dict[str, str] = field(default_factory=dict)

    def prepare(self, cells: list[Cell]) -> dict[str, Availability]:
        from harness.images import cache_lock, ensure_image

        out: dict[str, Availability] = {}
        with cache_lock(self.cache_dir):
            for image in _unique_images(cells):
                out[image.name] = self._prepare_one(image, ensure_image)
        return out

    def _prepare_one(self, image: ImageSpec, ensure_image: Callable[..., ImageStatus]) -> Availability:
        """One image; a failed build fails that image's cells, not the run."""
        try:
            status = ensure_image(image, self.engine, self.cache_dir, self.on_log)
        except BuildError as exc:
            return Availability(False, f"image build failed: {exc}", failed=True)
        self._python[image.name] = image.base.python_bin if image.base.kind == "registry" else "python3"
        if status.available and status.tag:
            self._images[image.name] = (status.tag, status.image_id)
        return Availability(status.available, status.reason)

    def device_available(self, device: str) -> Availability:
        if device != "gpu":
            return Availability(True)
        ok, reason = self.engine.gpu_available()
        return Availability(bool(ok), None if ok else f"no GPU: {reason}")

    def execute(self, request: ExecRequest) -> ExecOutcome:
        tag, image_id = self._images[request.cell.image.name]
        mounts = [Mount(str(self.payload.resolve()), PAYLOAD_MOUNT, read_only=True)]
        if request.entry != "probe":  # the probe needs no spec
            mounts.append(Mount(str(request.in_dir.resolve()), IN_MOUNT, read_only=True))
        mounts.append(Mount(str(request.out_dir.resolve()), OUT_MOUNT, read_only=False))
        if self.data_dir is not None and self.data_dir.is_dir():
            mounts.append(Mount(str(self.data_dir.resolve()), DATA_MOUNT, read_only=True))
        python = self._python.get(request.cell.image.name, "python3")
        creq = ContainerRequest(
            image=tag,
            command=payload_command(python, PAYLOAD_MOUNT, IN_MOUNT, OUT_MOUNT, request.entry),
            mounts=mounts,
            env={"PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "1", "HOME": "/tmp"},
            user=CONTAINER_USER,
            timeout_s=request.timeout_s,
            cpus=request.cpus,
            mem_limit=request.mem_limit,
            cpuset=request.cpuset,
            gpu=request.cell.device == "gpu",
            labels={"tfmh": "1", "tfmh.run": request.run_id, **self.labels},
        )
        monitor = (
            _ContainerTelemetry(self.engine, self.telemetry_interval_s, self.cgroup_root)
            if self.telemetry_interval_s
            else None
        )
        try:
            out = self.engine.run_container(creq, monitor=monitor)
        finally:
            summary = monitor.close() if monitor is not None else None
        return ExecOutcome(
            exit_code=out.exit_code,
            timed_out=out.timed_out,
            oom_killed=out.oom_killed,
            logs=out.logs,
            wall_s=max(0.0, out.finished_at - out.started_at),
            runner={
                "image_tag": tag,
                "image_id": image_id,
                "python": python,
                "limits": {"cpus": request.cpus, "mem_limit": request.mem_limit, "cpuset": request.cpuset},
            },
            telemetry=summary,
        )

    def cleanup(self) -> int:
        removed: int = self.engine.remove_containers({"tfmh": "1"})
        return removed


@dataclass
class LocalBackend:
    """The same payload in an existing interpreter (laptops, Docker-less clusters, quick checks). It has no
    network or memory isolation: results say runner.kind = local."""

    python: str
    data_dir: Path | None = None
    payload: Path = field(default_factory=payload_dir)
    #: host evidence per execution (harness.telemetry, the payload's process group); None: do not sample
    telemetry_interval_s: float | None = TELEMETRY_INTERVAL_S
    kind: str = "local"
    _running: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def prepare(self, cells: list[Cell]) -> dict[str, Availability]:
        if not Path(self.python).exists() and shutil.which(self.python) is None:
            raise ConfigError(f"--python: {self.python!r} is not an interpreter on this host")
        return {image.name: Availability(True) for image in _unique_images(cells)}

    def device_available(self, device: str) -> Availability:
        return Availability(True)  # the payload itself reports a missing GPU as a failed cell

    def execute(self, request: ExecRequest) -> ExecOutcome:
        cmd = payload_command(
            self.python, str(self.payload), str(request.in_dir), str(request.out_dir), request.entry
        )
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "1"}
        pin = _affinity_setter(request.cpuset)
        with tempfile.TemporaryFile() as log:
            started = time.monotonic()
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, preexec_fn=pin
            )
            self._running.append(proc)
            sampler = None
            if self.telemetry_interval_s:
                sampler = telemetry.Sampler(telemetry.ProcessGroupTarget(proc.pid), self.telemetry_interval_s)
                sampler.start()
            timed_out = False
            usage: Any = None
            try:
                timed_out, usage = _wait_local(proc, started + request.timeout_s)
            finally:
                if proc.returncode is None:  # interrupted: no process may outlive the execution
                    _kill_group(proc)
                    _reap(proc)
                self._running.remove(proc)
                summary = sampler.stop(_final_reading(usage)) if sampler is not None else None
            wall_s = time.monotonic() - started
            logs = _tail(log, LOG_LIMIT)
        return ExecOutcome(
            exit_code=proc.returncode,
            timed_out=timed_out,
            logs=logs,
            wall_s=wall_s,
            runner={
                "python": self.python,
                "image_tag": None,
                "image_id": None,
                "limits": {"cpuset": request.cpuset} if request.cpuset else {},
            },
            telemetry=summary,
        )

    def cleanup(self) -> int:
        for proc in list(self._running):
            _kill_group(proc)
        return len(self._running)


def _affinity_setter(cpuset: str | None) -> Callable[[], None] | None:
    """A preexec_fn pinning the child to ``cpuset`` (None when not pinned)."""
    if cpuset is None:
        return None
    cpus = parse_cpuset(cpuset)
    setaffinity = getattr(os, "sched_setaffinity", None)
    if setaffinity is None:
        raise ConfigError(f"--cpuset {cpuset}: this platform cannot pin processes (no sched_setaffinity)")

    def pin() -> None:
        setaffinity(0, cpus)

    return pin


def _wait_local(proc: subprocess.Popen[bytes], deadline: float) -> tuple[bool, Any]:
    """Wait for the payload (killing its process group at the deadline), kill what it left behind in its
    group while its zombie still holds the group id, then reap it with wait4 for its exact CPU time and
    peak RSS. Returns (timed out, resource usage)."""
    timed_out = False
    waitid = getattr(os, "waitid", None)  # macOS before Python 3.13 has none: no zombie to hold the group
    while True:
        if waitid is not None:
            exited = waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        else:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid != 0:
                break
            exited = False
        if exited:
            _kill_group(proc)  # anything the payload left behind in its group
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            _kill_group(proc)
            break
        time.sleep(min(LOCAL_POLL_S, remaining))
    if waitid is not None or timed_out:
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return timed_out, usage


def _reap(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ChildProcessError):
        _, status, _ = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode is None:
        proc.returncode = -signal.SIGKILL


def _final_reading(usage: Any) -> telemetry.TargetReading | None:
    """The exact totals of the reaped payload from wait4: its own and its waited-for children's CPU time,
    and the largest single-process RSS (the summary keeps the higher of this and the sampled group RSS)."""
    if usage is None:
        return None
    peak = int(usage.ru_maxrss) * 1024  # KiB on Linux
    return telemetry.TargetReading(cpu_s=float(usage.ru_utime + usage.ru_stime), peak_bytes=peak)


def _tail(log: IO[bytes], limit: int) -> str:
    log.flush()
    size = log.seek(0, os.SEEK_END)
    log.seek(max(0, size - limit))
    return log.read().decode("utf-8", "replace")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
