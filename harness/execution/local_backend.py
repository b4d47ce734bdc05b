"""The local backend: the payload in an existing interpreter (laptops, Docker-less clusters, quick checks),
its process group timed out, pinned, sampled and killed as a whole."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness.errors import ConfigError
from harness.execution import telemetry
from harness.execution.execute import (
    TELEMETRY_INTERVAL_S,
    Availability,
    ExecOutcome,
    ExecRequest,
    images_of,
    payload_command,
)
from harness.execution.interpreters import (
    InterpreterInfo,
    interpreter_mismatch,
    parse_python_args,
    probe_interpreter,
)
from harness.execution.usage import ProcessGroupTarget, TargetReading
from harness.images.sandbox import LEGACY_KERAS_ENV, LOG_CAP_BYTES, PAYLOAD_ENV
from harness.matrix.config import ImageSpec, cpuset_cpus
from harness.matrix.plan import Cell
from harness.paths import payload_dir

#: how often the local runner checks whether the payload has exited
LOCAL_POLL_S = 0.05


@dataclass
class LocalBackend:
    """The same payload in existing interpreters (laptops, Docker-less clusters, quick checks). Each
    interpreter is asked once what it has; an image's cells run only in an interpreter with the image's TF
    minor and Python minor (the others are unavailable, with the reason), so a record never claims an image
    that did not run. It has no network or memory isolation: results say runner.kind = local."""

    #: the interpreter (``--python PATH``); more in ``candidates``, per-image ones in ``pinned``
    python: str | None = None
    payload: Path = field(default_factory=payload_dir)
    #: host evidence per execution (harness.execution.telemetry, the payload's process group); None: do not
    # sample
    telemetry_interval_s: float | None = TELEMETRY_INTERVAL_S
    kind: str = "local"
    #: further interpreters to choose from (``--python PATH`` given several times)
    candidates: list[str] = field(default_factory=list)
    #: image name -> interpreter (``--python IMAGE=PATH``)
    pinned: dict[str, str] = field(default_factory=dict)
    on_log: Callable[[str], None] = lambda line: None
    #: asks an interpreter for its versions (tests swap it)
    probe: Callable[[str], InterpreterInfo] = probe_interpreter
    _running: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _probed: dict[str, InterpreterInfo] = field(default_factory=dict)
    _chosen: dict[str, InterpreterInfo] = field(default_factory=dict)
    _checked: dict[str, Availability] = field(default_factory=dict)

    @classmethod
    def from_args(cls, values: Sequence[str], **kwargs: Any) -> LocalBackend:
        """From the ``--python`` values (``PATH`` or ``IMAGE=PATH``, repeatable)."""
        bare, pinned = parse_python_args(values)
        if not bare and not pinned:
            raise ConfigError("--runner local needs --python PATH (the interpreter with TensorFlow)")
        return cls(python=bare[0] if bare else None, candidates=bare[1:], pinned=pinned, **kwargs)

    def interpreters(self) -> list[str]:
        """The interpreters any image may use, in the order given."""
        paths = [self.python] if self.python else []
        return list(dict.fromkeys([*paths, *self.candidates]))

    def info(self, path: str) -> InterpreterInfo:
        """What ``path`` has (asked once per backend)."""
        if path not in self._probed:
            self.on_log(f"asking {path} for its TF/Python/Keras versions")
            info = self.probe(path)
            self._probed[path] = info
            self.on_log(f"local interpreter {path}: {info.describe()}")
        return self._probed[path]

    def check(self, cells: list[Cell]) -> dict[str, Availability]:
        """Each image runs in the interpreter with its TF minor and Python minor (each asked once)."""
        for path in [*self.interpreters(), *self.pinned.values()]:
            if not Path(path).exists() and shutil.which(path) is None:
                raise ConfigError(f"--python: {path!r} is not an interpreter on this host")
        images = images_of(cells)
        names = {image.name for image in images}
        for name in sorted(set(self.pinned) - names):
            self.on_log(f"--python {name}={self.pinned[name]}: no runnable cell of image {name} in this run")
        found = {image.name: self._choose(image) for image in images}
        self._checked.update(found)
        return found

    def prepare(self, cells: list[Cell]) -> dict[str, Availability]:
        """Nothing to make: the interpreters exist or they do not (what ``check`` found)."""
        unchecked = [c for c in cells if c.image.name not in self._checked]
        if unchecked:
            self.check(unchecked)
        return {image.name: self._checked[image.name] for image in images_of(cells)}

    def _choose(self, image: ImageSpec) -> Availability:
        pinned = self.pinned.get(image.name)
        paths = [pinned] if pinned else self.interpreters()
        if not paths:
            return Availability(False, f"no local interpreter for image {image.name} (--python IMAGE=PATH)")
        infos = []
        for path in paths:
            info = self.info(path)
            if interpreter_mismatch(info, image) is None:
                self._chosen[image.name] = info
                return Availability(True)
            infos.append(info)
        if len(infos) == 1:
            return Availability(False, interpreter_mismatch(infos[0], image))
        have = "; ".join(
            f"{i.path}: TF {i.tf} on Python {i.python}" if i.tf else f"{i.path}: no TensorFlow" for i in infos
        )
        return Availability(
            False, f"no local interpreter has TF {image.tf_minor} on Python {image.python} ({have})"
        )

    def describe(self) -> dict[str, Any]:
        """Which interpreter runs which image, and what each reported."""
        return {
            "kind": self.kind,
            "interpreters": {
                name: {"path": info.path, **info.versions()} for name, info in sorted(self._chosen.items())
            },
        }

    def device_available(self, device: str) -> Availability:
        return Availability(True)  # the payload itself reports a missing GPU as a failed cell

    def data_path(self, host_dir: Path | None) -> str:
        return str(host_dir.resolve()) if host_dir is not None else ""  # no mounts: the host folder itself

    def engine_version(self) -> str | None:
        return None

    def _interpreter(self, image: str) -> tuple[str, InterpreterInfo | None]:
        info = self._chosen.get(image)
        if info is not None:
            return info.path, info
        path = self.pinned.get(image) or self.python or next(iter(self.candidates), None)
        if path is None:
            raise ConfigError(f"no local interpreter for image {image}")
        return path, self._probed.get(path)

    def execute(self, request: ExecRequest) -> ExecOutcome:
        python, info = self._interpreter(request.cell.image.name)
        cmd = payload_command(
            python, str(self.payload), str(request.in_dir), str(request.out_dir), request.entry
        )
        env = {k: v for k, v in os.environ.items() if k not in LEGACY_KERAS_ENV}
        env.update(PAYLOAD_ENV)
        if request.cell.image.keras == "legacy":  # what the image's environment says in a container
            env.update(LEGACY_KERAS_ENV)
        pin = _affinity_setter(request.cpuset)
        with tempfile.TemporaryFile() as log:
            started = time.monotonic()
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, preexec_fn=pin
            )
            self._running.append(proc)
            sampler = None
            if self.telemetry_interval_s:
                sampler = telemetry.Sampler(ProcessGroupTarget(proc.pid), self.telemetry_interval_s)
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
            logs = _tail(log, LOG_CAP_BYTES)
        runner: dict[str, Any] = {
            "python": python,
            "image_tag": None,
            "image_id": None,
            "limits": {"cpuset": request.cpuset} if request.cpuset else {},
        }
        if info is not None:
            runner["versions"] = info.versions()
        return ExecOutcome(
            exit_code=proc.returncode,
            timed_out=timed_out,
            logs=logs,
            wall_s=wall_s,
            runner=runner,
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
    cpus = cpuset_cpus(cpuset)
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


def _final_reading(usage: Any) -> TargetReading | None:
    """The exact totals of the reaped payload from wait4: its own and its waited-for children's CPU time,
    and the largest single-process RSS (the summary keeps the higher of this and the sampled group RSS)."""
    if usage is None:
        return None
    peak = int(usage.ru_maxrss) * 1024  # KiB on Linux
    return TargetReading(cpu_s=float(usage.ru_utime + usage.ru_stime), peak_bytes=peak)


def _tail(log: IO[bytes], limit: int) -> str:
    log.flush()
    size = log.seek(0, os.SEEK_END)
    log.seek(max(0, size - limit))
    return log.read().decode("utf-8", "replace")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
