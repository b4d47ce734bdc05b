"""Local interpreters: ask one once what it has (Python, TensorFlow, Keras), say whether it can stand for an
image, and read the ``--python`` values."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.images.sandbox import PAYLOAD_ENV
from harness.matrix.config import NAME_RE, ImageSpec

#: asks an interpreter what it has (runs on Python 3.6+; a missing or broken TF is reported, not raised)
INTERPRETER_PROBE = """\
import json, platform, sys
out = {"python": platform.python_version(), "executable": sys.executable, "tf": None, "keras": None,
       "tf_keras": None, "error": None}
try:
    import tensorflow as tf
    out["tf"] = str(tf.__version__)
    try:
        import keras
        out["keras"] = str(keras.__version__)
    except Exception:
        out["keras"] = getattr(getattr(tf, "keras", None), "__version__", None)
    try:
        import tf_keras
        out["tf_keras"] = str(tf_keras.__version__)
    except Exception:
        pass
except Exception as exc:
    out["error"] = "%s: %s" % (type(exc).__name__, exc)
sys.stdout.write("\\nTFMH-INTERPRETER " + json.dumps(out) + "\\n")
"""
PROBE_MARK = "TFMH-INTERPRETER "
#: importing TensorFlow can take a while on a cold cache
PROBE_TIMEOUT_S = 300.0
_IMAGE_NAME_RE = re.compile(NAME_RE)


@dataclass(frozen=True)
class InterpreterInfo:
    """What a local interpreter reported about itself."""

    path: str
    python: str | None = None
    tf: str | None = None
    keras: str | None = None
    #: the tf_keras (Keras 2) installed beside TF, which a ``keras: legacy`` image needs
    tf_keras: str | None = None
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
    env = {**os.environ, **PAYLOAD_ENV, "TF_CPP_MIN_LOG_LEVEL": "3"}  # quiet: only the answer matters
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
                tf_keras=doc.get("tf_keras"),
                error=(doc.get("error") or "")[:200] or None,
            )
    last = ((proc.stderr or proc.stdout).strip().splitlines() or [""])[-1][:200]
    return InterpreterInfo(path, error=f"not a Python interpreter? (exit {proc.returncode}: {last})")


def interpreter_mismatch(info: InterpreterInfo, image: ImageSpec) -> str | None:
    """None when ``info`` can stand for ``image`` (same TF minor and Python minor), else why not."""
    if info.tf is None:
        return f"local interpreter {info.path}: {info.describe()}"
    if info.tf_minor == image.tf_minor and info.python_minor == image.python:
        if image.keras != "legacy" or _minor(info.tf_keras) == image.tf_minor:
            return None
        return (
            f"local interpreter {info.path} has TF {info.tf} but "
            + (f"tf_keras {info.tf_keras}" if info.tf_keras else "no tf_keras")
            + f"; image {image.name} (keras: legacy) needs tf_keras {image.tf_minor}"
        )
    return (
        f"local interpreter {info.path} has TF {info.tf} on Python {info.python}; "
        f"image {image.name} needs TF {image.tf_minor} on Python {image.python}"
    )


def _minor(version: str | None) -> str | None:
    return ".".join(version.split(".")[:2]) if version else None


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
