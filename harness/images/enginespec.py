"""What the harness asks of the Docker engine, without the docker SDK: container requests and outcomes, the
harness label, the low-level build arguments and image references. `harness.images.engine` makes the SDK
calls.

Containers are always started locked down (no network, no capabilities, no new privileges, read-only root fs,
non-root user): a request has no security settings on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness.images.sandbox import CONTAINER_USER
from harness.images.sandbox import HARNESS_LABEL as HARNESS_LABEL
from harness.images.sandbox import HARNESS_LABEL_VALUE as HARNESS_LABEL_VALUE

#: tmpfs options for /tmp inside a container (HOME=/tmp); world-writable for the non-root user
TMPFS_OPTIONS = "rw,nosuid,nodev,mode=1777"


@dataclass(frozen=True)
class Mount:
    """A bind mount of a host path into the container."""

    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class ContainerRequest:
    """What to run, and under which limits. Security settings are not configurable on purpose."""

    image: str
    command: list[str]
    mounts: list[Mount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    user: str = CONTAINER_USER
    timeout_s: float = 1800.0
    cpus: float | None = None
    mem_limit: str | None = None
    #: pin to these CPUs (``--cpuset-cpus`` syntax, e.g. "0-1,3"); None: not pinned
    cpuset: str | None = None
    gpu: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    working_dir: str = "/tmp"


@dataclass(frozen=True)
class ContainerOutcome:
    """How a container ended. ``exit_code`` is None when it was killed on timeout."""

    exit_code: int | None
    oom_killed: bool
    timed_out: bool
    logs: str
    started_at: float
    finished_at: float
    container_id: str


@dataclass(frozen=True)
class ImageInfo:
    """An image as the engine lists it: ID, tags, size in bytes, creation time (Unix) and labels."""

    image_id: str
    tags: tuple[str, ...]
    size: int
    created: float
    labels: dict[str, str]

    @classmethod
    def from_list_entry(cls, attrs: Mapping[str, Any]) -> ImageInfo:
        """From an entry of the engine's image list (``GET /images/json``)."""
        created = attrs.get("Created")
        return cls(
            image_id=str(attrs.get("Id", "")),
            tags=tuple(str(t) for t in attrs.get("RepoTags") or () if t != "<none>:<none>"),
            size=int(attrs.get("Size") or 0),
            created=float(created) if isinstance(created, int | float) else 0.0,
            labels={str(k): str(v) for k, v in (attrs.get("Labels") or {}).items()},
        )


class ContainerMonitor(Protocol):
    """Observes a container's life in ``run_container`` (e.g. to sample its cgroup). ``started`` is called
    right after the start, ``finished`` after it ended (exit, or kill on timeout) and before its removal.
    Note: docker removes the container's cgroup when its processes exit, so ``finished`` comes too late to
    read cgroup files. A monitor's exceptions are ignored: observing never fails an execution."""

    def started(self, container_id: str) -> None: ...

    def finished(self, container_id: str) -> None: ...


def harness_labels(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels every harness object carries, plus ``extra``."""
    return {**(extra or {}), HARNESS_LABEL: HARNESS_LABEL_VALUE}


def label_filters(labels: Mapping[str, str]) -> list[str]:
    """Labels as the engine's ``label`` filter values (``key=value``, or ``key`` for an empty value)."""
    return [f"{k}={v}" if v else k for k, v in labels.items()]


def build_kwargs(
    context_dir: Path, dockerfile: str, tag: str, buildargs: Mapping[str, str], labels: Mapping[str, str]
) -> dict[str, Any]:
    """The keyword arguments for the low-level ``api.build`` (no network, no pulls, intermediates removed).

    ``labels`` are passed as given (none when empty): the harness Dockerfiles set ``tfmh=1`` themselves.
    """
    kwargs: dict[str, Any] = {
        "path": str(context_dir),
        "dockerfile": dockerfile,
        "tag": tag,
        "buildargs": dict(buildargs),
        "network_mode": "none",
        "rm": True,
        "forcerm": True,
        "pull": False,
        "decode": True,
    }
    if labels:
        # the classic builder appends one LABEL step per label after the last instruction; on fuse-overlayfs
        # each costs seconds above a large layer, so the Dockerfiles carry their labels (incl. tfmh=1) instead
        kwargs["labels"] = dict(labels)
    return kwargs


def split_ref(ref: str) -> tuple[str, str]:
    """``repo[:tag]`` → (repo, tag); a ``:`` inside a registry host:port is not a tag."""
    if "@" in ref:
        repo, digest = ref.split("@", 1)
        return repo, digest
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, "latest"


def stats_reading(raw: Any) -> dict[str, int | None] | None:
    """The figures of one docker stats API reading: cumulative CPU ns, throttling, memory usage/peak (peak:
    cgroup v1 only); None when it is not a reading."""
    if not isinstance(raw, dict):
        return None
    cpu = (raw.get("cpu_stats") or {}).get("cpu_usage") or {}
    throttling = (raw.get("cpu_stats") or {}).get("throttling_data") or {}
    memory = raw.get("memory_stats") or {}

    def num(value: Any) -> int | None:
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    return {
        "cpu_ns": num(cpu.get("total_usage")),
        "throttled_periods": num(throttling.get("throttled_periods")),
        "throttled_ns": num(throttling.get("throttled_time")),
        "mem_usage_bytes": num(memory.get("usage")),
        "mem_peak_bytes": num(memory.get("max_usage")),
    }
