"""Backends that execute the payload: in a fresh container per execution (docker) or in an existing
interpreter (local). Both implement harness.execute.Backend."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from harness import telemetry
from harness.config import ImageSpec
from harness.engine import DockerEngine
from harness.enginespec import ContainerRequest, Mount
from harness.errors import BuildError, ConfigError
from harness.execute import RESULT_FILE, SPEC_FILE, Availability, ExecOutcome, ExecRequest
from harness.images import BuildEvents, ImageStatus, short_build_error
from harness.paths import payload_dir
from harness.plan import Cell
from harness.usage import CGROUP_ROOT, ProcessGroupTarget, TargetReading, container_target

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
    cgroup_root: Path = CGROUP_ROOT
    kind: str = "docker"
    #: hears each image's build steps (the CLI's status line); None: silent
    events: BuildEvents | None = None
    #: image name -> the full error behind a short unavailable/failed reason (engine text, build log tail)
    details: dict[str, str] = field(default_factory=dict)
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


#: asks an interpreter what it has (runs on Python 3.6+; a missing or broken TF is reported, not raised)
INTERPRETER_PROBE = """\
import json, platform, sys
out = {"python": platform.python_version(), "executable": sys.executable, "tf": None, "keras": None,
       "error": None}
try:
    import tensorflow as tf
    out["tf"] = str(tf.__version__)
    try:
        import keras
        out["keras"] = str(keras.__version__)
    except Exception:
        out["keras"] = getattr(getattr(tf, "keras", None), "__version__", None)
except Exception as exc:
    out["error"] = "%s: %s" % (type(exc).__name__, exc)
sys.stdout.write("\\nTFMH-INTERPRETER " + json.dumps(out) + "\\n")
"""
PROBE_MARK = "TFMH-INTERPRETER "
#: importing TensorFlow can take a while on a cold cache
PROBE_TIMEOUT_S = 300.0
_IMAGE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class InterpreterInfo:
    """What a local interpreter reported about itself."""

    path: str
    python: str | None = None
    tf: str | None = None
    keras: str | None = None
    error: str | None = None

    @property
    def python_minor(self) -> str | None:
        return ".".join(self.python.split(".")[:2]) if self.python else None

    @property
    def tf_minor(self) -> str | None:
        return ".".join(self.tf.split(".")[:2]) if self.tf else None

    def versions(self) -> dict[str, str | None]:
        return {"python": self.python, "tf": self.tf, "keras": self.keras}

    def describe(self) -> str:
        if self.tf is None:
            return f"no TensorFlow ({self.error})" if self.error else "no TensorFlow"
        keras = f", Keras {self.keras}" if self.keras else ""
        return f"TF {self.tf}, Python {self.python}{keras}"


def probe_interpreter(path: str, timeout_s: float = PROBE_TIMEOUT_S) -> InterpreterInfo:
    """Ask ``path`` once for its Python, TensorFlow and Keras versions (a tiny ``python -c``)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        proc = subprocess.run(
            [path, "-c", INTERPRETER_PROBE],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return InterpreterInfo(path, error=f"it did not answer within {timeout_s:g} s")
    except OSError as exc:
        return InterpreterInfo(path, error=f"cannot run it: {exc.strerror}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(PROBE_MARK):
            try:
                doc = json.loads(line[len(PROBE_MARK) :])
            except ValueError:
                break
            return InterpreterInfo(
                path,
                python=doc.get("python"),
                tf=doc.get("tf"),
                keras=doc.get("keras"),
                error=(doc.get("error") or "")[:200] or None,
            )
    last = ((proc.stderr or proc.stdout).strip().splitlines() or [""])[-1][:200]
    return InterpreterInfo(path, error=f"not a Python interpreter? (exit {proc.returncode}: {last})")


def interpreter_mismatch(info: InterpreterInfo, image: ImageSpec) -> str | None:
    """None when ``info`` can stand for ``image`` (same TF minor and Python minor), else why not."""
    if info.tf is None:
        return f"local interpreter {info.path}: {info.describe()}"
    if info.tf_minor == image.tf_minor and info.python_minor == image.python:
        return None
    return (
        f"local interpreter {info.path} has TF {info.tf} on Python {info.python}; "
        f"image {image.name} needs TF {image.tf_minor} on Python {image.python}"
    )


def parse_python_args(values: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """``--python`` values: ``PATH`` (a candidate for every image: each image runs in the first that matches
    it) or ``IMAGE=PATH`` (that image only). Returns (candidates, pinned)."""
    bare: list[str] = []
    pinned: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if sep and _IMAGE_NAME_RE.match(name) and path and not Path(value).exists():
            if name in pinned and pinned[name] != path:
                raise ConfigError(f"--python {value}: image {name} is already mapped to {pinned[name]}")
            pinned[name] = path
        elif value:
            bare.append(value)
        else:
            raise ConfigError("--python: expected PATH or IMAGE=PATH, got an empty string")
    return list(dict.fromkeys(bare)), pinned


@dataclass
class LocalBackend:
    """The same payload in existing interpreters (laptops, Docker-less clusters, quick checks). Each
    interpreter is asked once what it has; an image's cells run only in an interpreter with the image's TF
    minor and Python minor (the others are unavailable, with the reason), so a record never claims an image
    that did not run. It has no network or memory isolation: results say runner.kind = local."""

    #: the interpreter (``--python PATH``); more in ``candidates``, per-image ones in ``pinned``
    python: str | None = None
    data_dir: Path | None = None
    payload: Path = field(default_factory=payload_dir)
    #: host evidence per execution (harness.telemetry, the payload's process group); None: do not sample
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

    def prepare(self, cells: list[Cell]) -> dict[str, Availability]:
        for path in [*self.interpreters(), *self.pinned.values()]:
            if not Path(path).exists() and shutil.which(path) is None:
                raise ConfigError(f"--python: {path!r} is not an interpreter on this host")
        images = _unique_images(cells)
        names = {image.name for image in images}
        for name in sorted(set(self.pinned) - names):
            self.on_log(f"--python {name}={self.pinned[name]}: no runnable cell of image {name} in this run")
        return {image.name: self._choose(image) for image in images}

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
        """Which interpreter runs which image, and what each reported (for the manifest / report)."""
        return {
            "kind": self.kind,
            "interpreters": {
                name: {"path": info.path, **info.versions()} for name, info in sorted(self._chosen.items())
            },
        }

    def device_available(self, device: str) -> Availability:
        return Availability(True)  # the payload itself reports a missing GPU as a failed cell

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
        if request.entry == "cell" and self.data_dir is not None:
            _point_spec_at_data(request, self.data_dir)
        cmd = payload_command(
            python, str(self.payload), str(request.in_dir), str(request.out_dir), request.entry
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
            logs = _tail(log, LOG_LIMIT)
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


def _point_spec_at_data(request: ExecRequest, data_dir: Path) -> None:
    """The local runner has no mounts: the spec names the host's data folder instead of ``/data``."""
    try:
        spec = json.loads(request.spec_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # the payload reports a missing/broken spec itself
    spec["data_dir"] = str(data_dir.resolve())
    request.spec_path.write_text(json.dumps(spec, indent=1, sort_keys=True), encoding="utf-8")


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
