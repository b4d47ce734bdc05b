"""The Docker engine, behind a small typed API. The only module that imports ``docker``.

What a container or build is asked to do is declared in :mod:`harness.images.enginespec`, how its output is
kept in :mod:`harness.images.enginelogs` (neither needs the SDK); this module makes the SDK calls.

Every docker SDK / requests error is mapped to :mod:`harness.errors` (``EngineError``, ``BuildError``), so the
rest of the harness never sees a docker exception. Containers are always started locked down (no network, no
capabilities, no new privileges, read-only root fs, non-root user) and always removed afterwards.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import docker.client
import docker.errors
import docker.models.containers
import docker.types
import requests.exceptions

from harness.errors import BuildError, EngineError
from harness.images.enginelogs import (
    BUILD_TAIL_LINES,
    LOG_TAIL_LINES,
    build_failure_message,
    cap_logs,
    consume_build_chunk,
)
from harness.images.enginespec import (
    TMPFS_OPTIONS,
    ContainerMonitor,
    ContainerOutcome,
    ContainerRequest,
    ImageInfo,
    build_kwargs,
    harness_labels,
    label_filters,
    split_ref,
    stats_reading,
)
from harness.images.sandbox import CONTAINER_BASE_ENV

_DAEMON_HINT = "is the Docker daemon running and is DOCKER_HOST (or /var/run/docker.sock) reachable?"


# ------------------------------------------------------------------------------------------ SDK arguments


def device_requests(gpu: bool) -> list[docker.types.DeviceRequest]:
    """``--gpus all`` as docker SDK device requests (empty when no GPU is wanted)."""
    if not gpu:
        return []
    return [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]


def container_kwargs(req: ContainerRequest) -> dict[str, Any]:
    """The keyword arguments for ``client.containers.create`` for a request (no engine needed)."""
    env = {**CONTAINER_BASE_ENV, **req.env}
    kwargs: dict[str, Any] = {
        "image": req.image,
        "command": list(req.command),
        "name": req.name,
        "user": req.user,
        "environment": env,
        "working_dir": req.working_dir,
        "labels": harness_labels(req.labels),
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "privileged": False,
        "read_only": True,
        "tmpfs": {"/tmp": TMPFS_OPTIONS},
        "mounts": [
            docker.types.Mount(target=m.target, source=m.source, type="bind", read_only=m.read_only)
            for m in req.mounts
        ],
        "detach": True,
    }
    if req.cpus is not None:
        kwargs["nano_cpus"] = round(req.cpus * 1e9)
    if req.cpuset is not None:
        kwargs["cpuset_cpus"] = req.cpuset
    if req.mem_limit is not None:
        kwargs["mem_limit"] = req.mem_limit
        kwargs["memswap_limit"] = req.mem_limit
    if req.gpu:
        kwargs["device_requests"] = device_requests(True)
    return kwargs


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Map docker / requests exceptions raised inside the block to ``EngineError``."""
    try:
        yield
    except docker.errors.APIError as exc:
        raise EngineError(f"{action}: {exc.explanation or exc}") from exc
    except requests.exceptions.ConnectionError as exc:
        raise EngineError(
            f"{action}: lost the connection to the Docker engine ({exc}); {_DAEMON_HINT}"
        ) from exc
    except docker.errors.DockerException as exc:
        raise EngineError(f"{action}: {exc}") from exc


# ------------------------------------------------------------------------------------------ the engine


class _Refused(Exception):
    """A registry call the engine or the registry refused; the message is the engine's raw reason."""


@contextlib.contextmanager
def _registry_call(api: Any, timeout_s: float) -> Iterator[None]:
    """The SDK's timeout set to `timeout_s` for one registry call (restored after); every SDK or HTTP
    error of the call becomes _Refused with the engine's raw text."""
    old_timeout = api.timeout
    api.timeout = int(max(1.0, timeout_s))
    try:
        yield
    except docker.errors.APIError as exc:
        raise _Refused(str(exc.explanation or exc).strip()) from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise _Refused(str(exc).strip()) from exc
    finally:
        api.timeout = old_timeout


class DockerEngine:
    """A connected Docker engine."""

    def __init__(self, client: docker.client.DockerClient) -> None:
        self._client = client

    @classmethod
    def connect(cls, timeout_s: float = 120.0) -> DockerEngine:
        """Connect using the environment (DOCKER_HOST …) and ping. EngineError when unreachable."""
        try:
            client = docker.client.from_env(timeout=int(timeout_s))
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"cannot reach the Docker engine: {exc}; {_DAEMON_HINT}") from exc
        return cls(client)

    def version(self) -> str:
        with engine_errors("docker version"):
            info = self._client.version()
        return str(info.get("Version", "unknown"))

    def gpu_available(self) -> tuple[bool, str]:
        """(True, how) when GPUs can be given to containers, else (False, why not)."""
        with engine_errors("docker info"):
            runtimes = self._client.info().get("Runtimes") or {}
        if "nvidia" in runtimes:
            return True, "nvidia runtime registered with the engine"
        if Path("/dev/nvidia0").exists():
            return True, "/dev/nvidia0 present (nvidia-container-toolkit assumed)"
        return False, "no nvidia runtime in docker info and no /dev/nvidia0 on this host"

    # ------------------------------------------------------------------ images

    def _inspect_image(self, tag: str) -> dict[str, Any] | None:
        try:
            with engine_errors(f"inspecting image {tag}"):
                return dict(self._client.images.get(tag).attrs)
        except EngineError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return None
            raise

    def image_id(self, tag: str) -> str | None:
        """The image ID of ``tag``, or None when the engine does not have it."""
        return None if (attrs := self._inspect_image(tag)) is None else str(attrs["Id"])

    def image_size(self, tag: str) -> int | None:
        """Size in bytes of ``tag`` (None when absent)."""
        return None if (attrs := self._inspect_image(tag)) is None else int(attrs["Size"])

    def remove_image(self, tag: str) -> bool:
        """Remove ``tag`` (untag; layers go when unused). False when it did not exist."""
        try:
            with engine_errors(f"removing image {tag}"):
                self._client.images.remove(tag, noprune=False)
        except EngineError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return False
            raise
        return True

    def list_images(self, label_filter: Mapping[str, str]) -> list[ImageInfo]:
        """The tagged images carrying all the given labels (one entry per image, with all its tags)."""
        with engine_errors("listing images"):
            found = self._client.api.images(filters={"label": label_filters(label_filter)})
        return [ImageInfo.from_list_entry(entry) for entry in found]

    def prune_dangling_images(self, label_filter: Mapping[str, str]) -> int:
        """Remove untagged images carrying the labels (e.g. finished build stages); returns bytes freed."""
        filters = {"dangling": True, "label": label_filters(label_filter)}
        with engine_errors("pruning dangling images"):
            result = self._client.images.prune(filters=filters)
        return int(result.get("SpaceReclaimed") or 0)

    def import_rootfs(
        self, tar_path: Path, repository: str, tag: str, changes: list[str] | None = None
    ) -> str:
        """``docker import`` a root filesystem tarball as ``repository:tag``; returns the image ID."""
        ref = f"{repository}:{tag}"
        with engine_errors(f"importing {tar_path} as {ref}"):
            self._client.api.import_image_from_file(
                str(tar_path), repository=repository, tag=tag, changes=changes or []
            )
        image_id = self.image_id(ref)
        if image_id is None:
            raise EngineError(f"importing {tar_path} as {ref}: the engine reported no image afterwards")
        return image_id

    def build(
        self,
        context_dir: Path,
        dockerfile: str,
        tag: str,
        buildargs: Mapping[str, str],
        labels: Mapping[str, str],
        on_log: Callable[[str], None],
        log_path: Path,
    ) -> str:
        """Build ``tag`` from ``context_dir`` (classic builder, no network); returns the image ID.

        Output goes line by line to ``on_log`` and to ``log_path``. Raises BuildError with the log tail.
        """
        kwargs = build_kwargs(context_dir, dockerfile, tag, buildargs, labels)
        tail: deque[str] = deque(maxlen=BUILD_TAIL_LINES)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        error: str | None = None
        with log_path.open("w", encoding="utf-8") as log:

            def emit(line: str) -> None:
                tail.append(line)
                log.write(line + "\n")
                log.flush()
                on_log(line)

            try:
                with engine_errors(f"building {tag}"):
                    for chunk in self._client.api.build(**kwargs):
                        error = consume_build_chunk(chunk, emit) or error
            except EngineError as exc:
                error = str(exc)
        if error is not None:
            raise BuildError(build_failure_message(tag, error, log_path, list(tail)))
        image_id = self.image_id(tag)
        if image_id is None:
            raise BuildError(build_failure_message(tag, "no image after build", log_path, list(tail)))
        return image_id

    def registry_pull(self, ref: str, timeout_s: float = 60.0) -> tuple[bool, str]:
        """Try once to pull ``ref``. (True, image ID) or (False, the engine's reason) — never raises."""
        repo, tag = split_ref(ref)
        api = self._client.api
        try:
            with _registry_call(api, timeout_s):
                for chunk in api.pull(repo, tag=tag, stream=True, decode=True):
                    if isinstance(chunk, dict) and chunk.get("error"):
                        return False, str(chunk["error"]).strip()
        except _Refused as exc:
            return False, str(exc)
        image_id = self.image_id(ref)
        return (True, image_id) if image_id else (False, f"pull of {ref} reported success but no image")

    def registry_available(self, ref: str, timeout_s: float = 20.0) -> tuple[bool, str]:
        """Whether ``ref`` is here or its registry answers for it, without pulling (for `harness plan`);
        when not, the engine's raw error text."""
        if self.image_id(ref) is not None:
            return True, "present locally"
        api = self._client.api
        try:
            with _registry_call(api, timeout_s):
                api.inspect_distribution(ref)  # type: ignore[no-untyped-call]
        except _Refused as exc:
            return False, str(exc)
        return True, "in the registry (pulled at build time)"

    # ------------------------------------------------------------------ containers

    def run_container(
        self, req: ContainerRequest, monitor: ContainerMonitor | None = None
    ) -> ContainerOutcome:
        """Run to completion (or timeout → kill), collect logs and OOM state, always remove the container
        (also on errors and KeyboardInterrupt; leftovers of a hard kill: ``remove_containers``).
        ``monitor`` (optional) is told when the container started and when it ended."""
        with engine_errors(f"creating a container from {req.image}"):
            container = self._client.containers.create(**container_kwargs(req))
        try:
            outcome = self._run_created(container, req, monitor)
        except BaseException:
            # already failing (or interrupted): remove, but don't mask the original exception
            with contextlib.suppress(EngineError):
                self._remove(container)
            raise
        self._remove(container)
        return outcome

    def _run_created(
        self,
        container: docker.models.containers.Container,
        req: ContainerRequest,
        monitor: ContainerMonitor | None = None,
    ) -> ContainerOutcome:
        started = time.time()
        with engine_errors(f"starting container {container.short_id} ({req.image})"):
            container.start()
        container_id = str(container.id)
        if monitor is not None:
            with contextlib.suppress(Exception):
                monitor.started(container_id)
        exit_code, timed_out = self._wait(container, req.timeout_s)
        finished = time.time()
        if monitor is not None:
            with contextlib.suppress(Exception):
                monitor.finished(container_id)
        with engine_errors(f"collecting container {container.short_id}"):
            container.reload()
            state = container.attrs["State"]
            raw = container.logs(stdout=True, stderr=True, tail=LOG_TAIL_LINES)
        return ContainerOutcome(
            exit_code=exit_code,
            oom_killed=bool(state.get("OOMKilled", False)),
            timed_out=timed_out,
            logs=cap_logs(raw.decode("utf-8", "replace")),
            started_at=started,
            finished_at=finished,
            container_id=str(container.id),
        )

    def _wait(
        self, container: docker.models.containers.Container, timeout_s: float
    ) -> tuple[int | None, bool]:
        """(exit code, timed out). Kills the container on timeout."""
        try:
            result = container.wait(timeout=timeout_s)
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
            if not _is_timeout(exc):
                raise EngineError(f"waiting for container {container.short_id}: {exc}") from exc
            with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
                container.kill()  # may already have exited; removal (force) follows anyway
            with contextlib.suppress(Exception):
                container.wait(timeout=30)
            return None, True
        return int(result.get("StatusCode", -1)), False

    def _remove(self, container: docker.models.containers.Container) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            try:
                container.remove(force=True, v=True)
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                raise EngineError(f"removing container {container.short_id}: {exc}") from exc

    def container_stats(self, container_id: str) -> dict[str, int | None] | None:
        """One reading of the docker stats API (one-shot), for when the host's cgroup files are not
        visible: cumulative CPU ns, throttling, memory usage/peak (peak: cgroup v1 only). None on any error
        or when the container is not running."""
        try:
            raw = self._client.api.stats(container_id, stream=False, one_shot=True)
        except Exception:  # stats are evidence, not a requirement: never raise
            return None
        return stats_reading(raw)

    def _containers(self, labels: Mapping[str, str]) -> list[docker.models.containers.Container]:
        with engine_errors("listing containers"):
            return list(self._client.containers.list(all=True, filters={"label": label_filters(labels)}))

    def list_containers(self, label_filter: Mapping[str, str]) -> list[str]:
        """IDs of all containers (running or not) carrying all the given labels."""
        return [str(c.id) for c in self._containers(label_filter)]

    def remove_containers(self, label_filter: Mapping[str, str]) -> int:
        """Force-remove leftover containers carrying all the given labels; returns how many."""
        found = self._containers(label_filter)
        for container in found:
            self._remove(container)
        return len(found)


def _is_timeout(exc: BaseException) -> bool:
    """docker-py surfaces a wait timeout as ReadTimeout or as ConnectionError wrapping a ReadTimeoutError."""
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    inner = exc.args[0] if exc.args else exc
    return "timed out" in str(exc).lower() or "timeout" in type(inner).__name__.lower()
