"""Backends that execute the payload: in a fresh container per execution (docker) or in an existing
interpreter (local). Both implement harness.execute.Backend."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

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


def payload_command(python: str, payload: str, in_dir: str, out_dir: str) -> list[str]:
    return [
        python,
        f"{payload}/run.py",
        "--spec",
        f"{in_dir}/{SPEC_FILE}",
        "--out",
        f"{out_dir}/{RESULT_FILE}",
    ]


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
        mounts = [
            Mount(str(self.payload.resolve()), PAYLOAD_MOUNT, read_only=True),
            Mount(str(request.in_dir.resolve()), IN_MOUNT, read_only=True),
            Mount(str(request.out_dir.resolve()), OUT_MOUNT, read_only=False),
        ]
        if self.data_dir is not None and self.data_dir.is_dir():
            mounts.append(Mount(str(self.data_dir.resolve()), DATA_MOUNT, read_only=True))
        python = self._python.get(request.cell.image.name, "python3")
        creq = ContainerRequest(
            image=tag,
            command=payload_command(python, PAYLOAD_MOUNT, IN_MOUNT, OUT_MOUNT),
            mounts=mounts,
            env={"PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "1", "HOME": "/tmp"},
            user=CONTAINER_USER,
            timeout_s=request.timeout_s,
            cpus=request.cpus,
            mem_limit=request.mem_limit,
            gpu=request.cell.device == "gpu",
            labels={"tfmh": "1", "tfmh.run": request.run_id, **self.labels},
        )
        out = self.engine.run_container(creq)
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
                "limits": {"cpus": request.cpus, "mem_limit": request.mem_limit},
            },
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
    kind: str = "local"
    _running: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def prepare(self, cells: list[Cell]) -> dict[str, Availability]:
        if not Path(self.python).exists() and shutil.which(self.python) is None:
            raise ConfigError(f"--python: {self.python!r} is not an interpreter on this host")
        return {image.name: Availability(True) for image in _unique_images(cells)}

    def device_available(self, device: str) -> Availability:
        return Availability(True)  # the payload itself reports a missing GPU as a failed cell

    def execute(self, request: ExecRequest) -> ExecOutcome:
        cmd = payload_command(self.python, str(self.payload), str(request.in_dir), str(request.out_dir))
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "1"}
        started = time.monotonic()
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self._running.append(proc)
        timed_out = False
        try:
            out, _ = proc.communicate(timeout=request.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            out, _ = proc.communicate()
        finally:
            if proc.poll() is None:
                _kill_group(proc)
                proc.wait()
            self._running.remove(proc)
        return ExecOutcome(
            exit_code=proc.returncode,
            timed_out=timed_out,
            logs=out[-LOG_LIMIT:].decode("utf-8", "replace"),
            wall_s=time.monotonic() - started,
            runner={"python": self.python, "image_tag": None, "image_id": None, "limits": {}},
        )

    def cleanup(self) -> int:
        for proc in list(self._running):
            _kill_group(proc)
        return len(self._running)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
