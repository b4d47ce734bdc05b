"""Native TensorFlow interpreters without Docker: a venv per matrix image, made from the same pins.

`python -m harness.images.nativeenv --images tf2.15-py3.11` creates (or reuses)
`<cache>/venvs/<image>-<hash>/`
with the image's TF package, and prints the interpreter path. Use it with `harness run --runner local
--python PATH`, or in the `payload` tox environment. Wheels come from the harness wheelhouse when present.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path

from harness import cachedirs
from harness.digest import text_sha256
from harness.errors import ConfigError, HarnessError
from harness.matrix.config import ImageSpec, load_matrix
from harness.matrix.testedconfigs import load_table, tf_keras_requirement


def venv_dir(cache_dir: Path, image: ImageSpec) -> Path:
    keras = [f"keras={image.keras}"] if image.keras != "bundled" else []  # bundled: the hash as before
    recipe = "\n".join([image.package, *image.extra_packages, *keras, sys.version.split()[0]])
    return cachedirs.venvs(cache_dir) / f"{image.name}-{text_sha256(recipe, 12)}"


def check_host_python(image: ImageSpec) -> None:
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    if host != image.python:
        raise ConfigError(
            f"image {image.name} declares Python {image.python} but this host runs Python {host}: "
            "a native venv needs the same interpreter (use the docker runner instead)"
        )


def ensure_venv(cache_dir: Path, image: ImageSpec) -> Path:
    """The interpreter of a venv holding `image.package` (+ extras); created once, then reused."""
    check_host_python(image)
    target = venv_dir(cache_dir, image)
    python = target / "bin" / "python"
    marker = target / ".complete"
    if marker.exists():
        return python
    venv.EnvBuilder(with_pip=True, clear=True).create(target)
    find_links = cachedirs.wheelhouse(cache_dir, image.python)
    cmd = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if find_links.is_dir():
        cmd += ["--find-links", str(find_links)]
    _pip([*cmd, image.package, *image.extra_packages], image)
    keras2 = tf_keras_requirement(image, load_table())
    if keras2 is not None:  # as the image installs it: without its `tensorflow` dependency
        _pip([*cmd, "--no-deps", keras2], image)
    marker.write_text(image.package + "\n", encoding="utf-8")
    return python


def _pip(cmd: list[str], image: ImageSpec) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise HarnessError(f"pip could not install {image.package} for image {image.name}:\n{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.images.nativeenv", description=__doc__)
    parser.add_argument("--matrix", type=Path, default=Path("matrix.yaml"))
    parser.add_argument("--images", nargs="+", required=True, help="image names from the matrix")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, help="also write the interpreter paths, one per line, here")
    args = parser.parse_args(argv)
    try:
        matrix = load_matrix(args.matrix)
        unknown = [n for n in args.images if n not in matrix.images]
        if unknown:
            raise ConfigError(f"{args.matrix}: images {unknown} are not in the matrix")
        cache = cachedirs.root(args.cache_dir)
        pythons = [str(ensure_venv(cache, matrix.images[name])) for name in args.images]
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    text = "\n".join(pythons) + "\n"
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
