"""Check an image against TensorFlow's tested build configurations (docker/compat.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from harness.errors import ConfigError
from harness.matrix.config import ImageSpec
from harness.paths import docker_dir

#: the python3 and glibc each supported suite ships (wheels are picked for these)
SUITE_PYTHON: dict[str, str] = {"bookworm": "3.11", "bullseye": "3.9"}
SUITE_GLIBC_MINOR: dict[str, int] = {"bookworm": 36, "bullseye": 31}


@dataclass(frozen=True)
class TestedConfig:
    tf: str
    python_min: str
    python_max: str
    cuda: str
    cudnn: str
    keras: int
    #: the tf_keras (Keras 2) release matching a Keras-3 TF release; None where there is none
    tf_keras: str | None = None


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def load_table(path: Path | None = None) -> dict[str, TestedConfig]:
    path = path or docker_dir() / "compat.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the compatibility table: {exc}") from exc
    table: dict[str, TestedConfig] = {}
    for tf, row in (data or {}).get("versions", {}).items():
        lo, hi = row["python"]
        tf_keras = row.get("tf_keras")
        table[str(tf)] = TestedConfig(
            str(tf),
            str(lo),
            str(hi),
            str(row["cuda"]),
            str(row["cudnn"]),
            row["keras"],
            str(tf_keras) if tf_keras is not None else None,
        )
    return table


def check_image(image: ImageSpec, table: dict[str, TestedConfig]) -> list[str]:
    """Why `image` is not a tested configuration (empty list: it is). CPU-only images declare no CUDA."""
    row = table.get(image.tf_minor)
    if row is None:
        return [f"tf: {image.tf} is not in the compatibility table (known: {', '.join(sorted(table))})"]
    problems: list[str] = []
    py = _version_tuple(image.python)
    if not _version_tuple(row.python_min) <= py <= _version_tuple(row.python_max):
        problems.append(
            f"python: TF {row.tf} is tested on Python {row.python_min} to {row.python_max}, "
            f"not {image.python}"
        )
    if image.cuda is not None and image.cuda != row.cuda:
        problems.append(f"cuda: TF {row.tf} is tested with CUDA {row.cuda}, not {image.cuda}")
    if image.cudnn is not None and image.cudnn.split(".")[0] != row.cudnn.split(".")[0]:
        problems.append(
            f"cudnn: TF {row.tf} is tested with cuDNN {row.cudnn} (major {row.cudnn.split('.')[0]}), "
            f"not {image.cudnn}"
        )
    if image.base.kind == "bootstrap" and SUITE_PYTHON.get(image.base.suite) != image.python:
        problems.append(
            f"python: a bootstrap base of Debian {image.base.suite} has Python "
            f"{SUITE_PYTHON.get(image.base.suite)}, not {image.python}"
        )
    if "gpu" in image.devices and (image.cuda is None or image.cudnn is None):
        problems.append(
            f"devices: a GPU image must declare cuda and cudnn (TF {row.tf}: CUDA {row.cuda}, "
            f"cuDNN {row.cudnn})"
        )
    return problems


def keras_major(image: ImageSpec, table: dict[str, TestedConfig]) -> int | None:
    """The Keras major version tf.keras is in `image` (2 for ``keras: legacy``); None: TF not in the table."""
    if image.keras == "legacy":
        return 2
    row = table.get(image.tf_minor)
    return row.keras if row is not None else None


def tf_keras_requirement(image: ImageSpec, table: dict[str, TestedConfig]) -> str | None:
    """The pip requirement of the Keras 2 package a ``keras: legacy`` image installs (None otherwise)."""
    if image.keras != "legacy":
        return None
    row = table.get(image.tf_minor)
    return f"tf_keras=={row.tf_keras}" if row is not None and row.tf_keras else None


def legacy_keras_problems(image: ImageSpec, table: dict[str, TestedConfig]) -> list[str]:
    """Why ``keras: legacy`` cannot be built for `image` (checked even with ``allow_untested``: without a
    matching tf_keras release there is nothing to install)."""
    if image.keras != "legacy":
        return []
    row = table.get(image.tf_minor)
    with_tf_keras = sorted((r.tf for r in table.values() if r.tf_keras), key=_version_tuple)
    if row is not None and row.keras == 2:
        return [
            f"keras: legacy: tf.keras is already Keras 2 in TF {row.tf}; legacy (tf_keras with "
            f"TF_USE_LEGACY_KERAS=1) is for the Keras 3 releases ({', '.join(with_tf_keras)})"
        ]
    if row is None or not row.tf_keras:
        return [
            f"keras: legacy: no tf_keras release matching TF {image.tf_minor} is known "
            f"(docker/compat.yaml lists one for TF {', '.join(with_tf_keras)})"
        ]
    return []


def check_matrix_images(images: dict[str, ImageSpec], table: dict[str, TestedConfig], source: Path) -> None:
    """Raise ConfigError listing every image that is not a tested configuration and did not opt out, and
    every ``keras: legacy`` image without a matching tf_keras (no opting out of that one)."""
    untested: list[str] = []
    legacy: list[str] = []
    for name, image in images.items():
        for problem in [] if image.allow_untested else check_image(image, table):
            untested.append(f"  {source}: images.{name}.{problem}")
        for problem in legacy_keras_problems(image, table):
            legacy.append(f"  {source}: images.{name}.{problem}")
    parts = []
    if untested:
        parts.append(
            f"{source}: image(s) outside TensorFlow's tested build configurations "
            "(set `allow_untested: true` on an image to opt out):\n" + "\n".join(untested)
        )
    if legacy:
        parts.append(f"{source}: image(s) whose `keras: legacy` cannot be built:\n" + "\n".join(legacy))
    if parts:
        raise ConfigError("\n".join(parts))
