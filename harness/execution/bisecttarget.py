"""What `harness bisect` searches over, checked before anything is built: the cell (workload, parameters,
device) and the TF releases between the good and the bad one, ordered by TF version.

A release is a TF minor version ("2.12"); its image is the one image of the profile's selection (every image
of the matrix when the profile names none) with that TF minor on the device. When several images have the
same minor, the first bootstrapped one (buildable without a registry) wins, else the first in matrix order.
Every bad input is a ConfigError (exit 2) naming the option.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import ConfigError
from harness.matrix.config import ImageSpec, merged_params
from harness.matrix.params import parse_assignments
from harness.matrix.plan import Cell, make_cell_id
from harness.matrix.source import MatrixSource


@dataclass(frozen=True)
class BisectRequest:
    """The command line of `harness bisect`: the cell, the two releases and the threshold."""

    workload: str
    #: ``--param KEY=VALUE`` as given
    params: tuple[str, ...]
    good: str
    bad: str
    threshold_pct: float
    device: str = "cpu"


@dataclass(frozen=True)
class Release:
    release: str
    image: ImageSpec
    cell: Cell


@dataclass(frozen=True)
class BisectTarget:
    """The releases from good to bad (inclusive, oldest first), each with its cell."""

    workload: str
    device: str
    params: dict[str, object]
    releases: list[Release]

    @property
    def names(self) -> list[str]:
        return [r.release for r in self.releases]

    def release(self, name: str) -> Release:
        return next(r for r in self.releases if r.release == name)


def version_key(tf: str) -> tuple[int, ...]:
    return tuple(int(x) for x in tf.split("."))


def release_images(source: MatrixSource, device: str) -> dict[str, ImageSpec]:
    """TF minor -> its image among the profile's images on `device`, ordered by TF version."""
    matrix, profile = source.matrix, source.plan.profile
    names = profile.images or list(matrix.images)
    chosen: dict[str, ImageSpec] = {}
    for name in names:
        image = matrix.images[name]
        if device not in image.devices:
            continue
        held = chosen.get(image.tf_minor)
        if held is None or (held.base.kind != "bootstrap" and image.base.kind == "bootstrap"):
            chosen[image.tf_minor] = image
    return dict(sorted(chosen.items(), key=lambda kv: version_key(kv[0])))


def _pick(arg: str, option: str, releases: dict[str, ImageSpec], where: str) -> str:
    if arg in releases:
        return arg
    by_image = {img.name: minor for minor, img in releases.items()}
    if arg in by_image:
        return by_image[arg]
    have = ", ".join(releases) or "none"
    raise ConfigError(f"{option} {arg}: no image for that TF release {where} (have: {have})")


def resolve_target(source: MatrixSource, request: BisectRequest) -> BisectTarget:
    """The checked target of a bisection (ConfigError naming the option otherwise)."""
    matrix = source.matrix
    if source.shard is not None:
        raise ConfigError("--shard: a bisection probes one cell over releases; it is not sharded")
    if request.workload not in matrix.workloads:
        have = ", ".join(matrix.workloads)
        raise ConfigError(f"--workload {request.workload}: not a workload of {source.path} (have: {have})")
    if not 0 < request.threshold_pct <= 1000:
        raise ConfigError(
            f"--threshold: expected a percentage 0 < PCT <= 1000, got {request.threshold_pct:g}"
        )
    params = merged_params(matrix, source.plan.profile, request.workload)
    params.update(parse_assignments(request.params, request.workload))
    axes = sorted(k for k, v in params.items() if isinstance(v, list))
    if axes:
        pick = "; ".join(f"{k} (one of {', '.join(map(str, params[k]))})" for k in axes)
        raise ConfigError(f"--param: {request.workload} has more than one value for {pick}: pick one")
    where = f"on {request.device} in profile {source.profile!r} of {source.path}"
    images = release_images(source, request.device)
    good = _pick(request.good, "--good", images, where)
    bad = _pick(request.bad, "--bad", images, where)
    names = list(images)
    if names.index(good) >= names.index(bad):
        raise ConfigError(f"--good {good} --bad {bad}: the good release must be older than the bad one")
    axis_keys = set(source.plan.axis_keys)
    releases = [
        Release(
            minor,
            images[minor],
            Cell(
                make_cell_id(images[minor].name, request.device, request.workload, params, axis_keys),
                images[minor],
                request.device,
                request.workload,
                dict(params),
            ),
        )
        for minor in names[names.index(good) : names.index(bad) + 1]
    ]
    return BisectTarget(request.workload, request.device, dict(params), releases)
