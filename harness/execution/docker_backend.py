"""The docker backend: each execution in a fresh container (no network, non-root, no privileges, read-only
payload/spec/data), images made by harness.images.build, host evidence from the container's cgroup."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import BuildError
from harness.execution import telemetry
from harness.execution.execute import (
    TELEMETRY_INTERVAL_S,
    Availability,
    ExecOutcome,
    ExecRequest,
    images_of,
    payload_command,
)
from harness.execution.usage import CGROUP_ROOT, container_target
from harness.images.engine import DockerEngine
from harness.images.enginespec import ContainerRequest, Mount
from harness.images.imageplan import BuildEvents, ImageStatus, short_build_error, short_engine_reason
from harness.images.inventory import record_use
from harness.images.sandbox import (
    CONTAINER_BASE_ENV,
    CONTAINER_USER,
    DATA_MOUNT,
    IN_MOUNT,
    OUT_MOUNT,
    PAYLOAD_ENV,
    PAYLOAD_MOUNT,
    container_labels,
)
from harness.matrix.config import ImageSpec
from harness.matrix.plan import Cell
from harness.paths import payload_dir


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

        target = container_target(container_id, self.cgroup_root, stats=stats)
        self.sampler = telemetry.Sampler(target, self.interval_s)
        self.sampler.start()

    def finished(self, container_id: str) -> None:
        self.close()

    def close(self) -> dict[str, Any] | None:
        if self.summary is None and self.sampler is not None:
            self.summary = self.sampler.stop()
        return self.summary


_LOG_PATH_RE = re.compile(r"\((/[^()\s]+\.log)\)")


def build_failure_reason(image: str, exc: BaseException) -> str:
    """One line for a failed image build: what failed, and the log file with the whole output."""
    text = str(exc)
    first = short_build_error(text).removeprefix(f"image {image}: ")
    first = re.sub(r";? ?last \d+ log lines.*$", "", first)
    match = _LOG_PATH_RE.search(text)
    return f"{first} (log: {match.group(1)})" if match and match.group(1) not in first else first


@dataclass
class DockerBackend:
    """Each execution in a fresh container: no network, non-root, no privileges, read-only payload/data."""

    engine: DockerEngine
    cache_dir: Path
    payload: Path = field(default_factory=payload_dir)
    on_log: Callable[[str], None] = lambda line: None
    labels: dict[str, str] = field(default_factory=dict)
    #: host evidence per execution (harness.execution.telemetry); None: do not sample
    telemetry_interval_s: float | None = TELEMETRY_INTERVAL_S
    cgroup_root: Path = CGROUP_ROOT
    kind: str = "docker"
    #: hears each image's build steps (the CLI's status line); None: silent
    events: BuildEvents | None = None
    #: image name -> the full error behind a short unavailable/failed reason (engine text, build log tail)
    details: dict[str, str] = field(default_factory=dict)
    _images: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    _python: dict[str, str] = field(default_factory=dict)
    _registry: dict[str, tuple[bool, str]] = field(default_factory=dict)

    def check(self, cells: list[Cell]) -> dict[str, Availability]:
        """A registry base must be here or answer for in its registry (asked once per base, never pulled);
        the engine's raw error stays with the short reason. Bootstrap bases are made from the suite."""
        return {image.name: self._check_one(image) for image in images_of(cells)}

    def _check_one(self, image: ImageSpec) -> Availability:
        base = image.base
        if base.kind != "registry":
            return Availability(True)
        if base.image not in self._registry:
            self._registry[base.image] = self.engine.registry_available(base.image)
        ok, raw = self._registry[base.image]
        if ok:
            return Availability(True)
        reason = f"registry unreachable: {short_engine_reason(raw, base.image)}"
        self.details[image.name] = raw
        return Availability(False, reason, detail=raw)

    def prepare(self, cells: list[Cell]) -> dict[str, Availability]:
        from harness.images.build import cache_lock, ensure_image

        out: dict[str, Availability] = {}
        with cache_lock(self.cache_dir):
            for image in images_of(cells):
                out[image.name] = self._prepare_one(image, ensure_image)
        return out

    def _prepare_one(self, image: ImageSpec, ensure_image: Callable[..., ImageStatus]) -> Availability:
        """One image; a failed build fails that image's cells, not the run. Reasons stay short (one line,
        naming the log file); the full text is kept in ``details`` (and the events printed the log tail)."""
        try:
            if self.events is not None:
                status = ensure_image(image, self.engine, self.cache_dir, self.on_log, events=self.events)
            else:
                status = ensure_image(image, self.engine, self.cache_dir, self.on_log)
        except BuildError as exc:
            self.details[image.name] = str(exc)
            reason = f"image build failed: {build_failure_reason(image.name, exc)}"
            return Availability(False, reason, True, detail=str(exc))
        self._python[image.name] = image.base.python_bin if image.base.kind == "registry" else "python3"
        if status.available and status.tag:
            self._images[image.name] = (status.tag, status.image_id)
        if status.detail:
            self.details[image.name] = status.detail
        return Availability(status.available, status.reason, detail=status.detail)

    def device_available(self, device: str) -> Availability:
        if device != "gpu":
            return Availability(True)
        ok, reason = self.engine.gpu_available()
        return Availability(bool(ok), None if ok else f"no GPU: {reason}")

    def data_path(self, host_dir: Path | None) -> str:
        return DATA_MOUNT  # the spec always names the mount point; the folder is mounted when there is one

    def engine_version(self) -> str | None:
        return self.engine.version()

    def execute(self, request: ExecRequest) -> ExecOutcome:
        tag, image_id = self._images[request.cell.image.name]
        mounts = [Mount(str(self.payload.resolve()), PAYLOAD_MOUNT, read_only=True)]
        if request.entry != "probe":  # the probe needs no spec
            mounts.append(Mount(str(request.in_dir.resolve()), IN_MOUNT, read_only=True))
        mounts.append(Mount(str(request.out_dir.resolve()), OUT_MOUNT, read_only=False))
        if request.data_dir is not None and request.data_dir.is_dir():
            mounts.append(Mount(str(request.data_dir.resolve()), DATA_MOUNT, read_only=True))
        python = self._python.get(request.cell.image.name, "python3")
        creq = ContainerRequest(
            image=tag,
            command=payload_command(python, PAYLOAD_MOUNT, IN_MOUNT, OUT_MOUNT, request.entry),
            mounts=mounts,
            env={**CONTAINER_BASE_ENV, **PAYLOAD_ENV},
            user=CONTAINER_USER,
            timeout_s=request.timeout_s,
            cpus=request.cpus,
            mem_limit=request.mem_limit,
            cpuset=request.cpuset,
            gpu=request.cell.device == "gpu",
            labels={**container_labels(request.run_id), **self.labels},
        )
        monitor = (
            _ContainerTelemetry(self.engine, self.telemetry_interval_s, self.cgroup_root)
            if self.telemetry_interval_s
            else None
        )
        record_use(self.cache_dir, tag)
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
        removed: int = self.engine.remove_containers(container_labels())
        return removed
