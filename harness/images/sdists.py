"""Requirements with no wheel for the image's Python as of its release (``termcolor~=1.1.0`` and
``wrapt~=1.12.1`` of TF 2.5, ``wrapt 1.14.1`` on Python 3.11 for TF 2.12-2.15, ``jax>=0.3.15`` of TF 2.12):
their sdist is fetched on the host and built into a wheel in a container of the image's *builder* base (the
same Debian suite and python3 plus gcc and the Python headers, no network), as ``pip install`` did on a
machine with a compiler when the release was current; the image still installs wheels only. A built wheel
must be pure or tagged for the base's own interpreter on plain ``linux_*`` (a tag only a local build has: the
index serves no such wheels); anything else is refused."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness import cachedirs
from harness.digest import file_sha256
from harness.errors import BuildError
from harness.images.bootstrap import BaseRecipe, ensure_recipe
from harness.images.engine import DockerEngine
from harness.images.enginespec import ContainerRequest, Mount
from harness.images.pipcmd import pip_env, sdist_download_command
from harness.safenames import name_from
from harness.subproc import run_logged

_UNSATISFIED_RE = re.compile(
    r"Could not find a version that satisfies the requirement (.+?)(?: \(from |$)", re.M
)
_SDIST_SUFFIXES = (".tar.gz", ".zip", ".tar.bz2")
#: fixed zip timestamps, so rebuilding the same sdist gives the same wheel bytes
SOURCE_DATE_EPOCH = "315532800"
BUILD_TIMEOUT_S = 900.0

#: (sdist file) -> the wheel built from it
WheelBuilder = Callable[[Path], Path]


def unsatisfied_requirement(log_text: str) -> str | None:
    """The requirement pip found no acceptable (wheel) version of, from its output; None if none."""
    matches = _UNSATISFIED_RE.findall(log_text)
    return matches[-1].strip() if matches else None


def is_sdist(filename: str) -> bool:
    return filename.endswith(_SDIST_SUFFIXES)


def is_pure_wheel(filename: str) -> bool:
    return filename.endswith("-none-any.whl")


def local_platform(filename: str) -> str | None:
    """The plain ``linux_*`` platform tag of a locally built wheel, None for a pure one."""
    return None if is_pure_wheel(filename) else filename.removesuffix(".whl").rsplit("-", 1)[-1]


def usable_built_wheel(filename: str, python: str) -> bool:
    """Pure, or built for CPython ``python`` on plain linux (what a build in the base produces)."""
    if is_pure_wheel(filename):
        return True
    parts = filename.removesuffix(".whl").split("-")
    cp = "cp" + python.replace(".", "")
    return len(parts) in (5, 6) and parts[-3] == cp and parts[-2] == cp and parts[-1].startswith("linux_")


def build_command(sdist_name: str) -> list[str]:
    """pip wheel of one sdist with the base's own setuptools (no build isolation: no index in there)."""
    return [
        "python3",
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--disable-pip-version-check",
        "--no-cache-dir",
        "--wheel-dir",
        "/out",
        f"/in/{sdist_name}",
    ]


def fetch_sdist(
    requirement: str, python: str, cache_dir: Path, cutoff: str, on_log: Callable[[str], None], image: str
) -> Path:
    """The newest sdist of ``requirement`` uploaded before ``cutoff``, kept under ``cachedirs.sdists``."""
    folder = cachedirs.sdists(cache_dir, python)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=folder))
    try:
        run_logged(
            sdist_download_command(python, tmp, requirement, cutoff),
            what=f"sdist download of {requirement} for image {image} (no wheel before {cutoff})",
            on_log=on_log,
            log_path=cachedirs.logs(cache_dir) / f"sdist-{image}-{name_from(requirement)}.log",
            env=pip_env(),
        )
        found = [p for p in tmp.iterdir() if is_sdist(p.name)]
        if len(found) != 1:
            raise BuildError(f"sdist download of {requirement} for image {image} gave {len(found)} sdists")
        target = folder / found[0].name
        found[0].replace(target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class ContainerWheelBuilder:
    """Builds sdists into wheels in containers of a builder base (made when first needed); the wheels are
    cached by builder and sdist hash."""

    def __init__(
        self,
        engine: DockerEngine,
        recipe: BaseRecipe,
        cache_dir: Path,
        python: str,
        on_log: Callable[[str], None],
    ) -> None:
        self.engine = engine
        self.recipe = recipe
        self.base_ref = recipe.ref
        self.cache_dir = cache_dir
        self.python = python
        self.on_log = on_log

    def __call__(self, sdist: Path) -> Path:
        built = cachedirs.built_wheels(self.cache_dir, self.python)
        folder = built / f"{self.recipe.digest}-{file_sha256(sdist)[:16]}"
        cached = sorted(folder.glob("*.whl")) if folder.is_dir() else []
        if cached:
            return cached[0]
        ensure_recipe(self.recipe, self.engine, self.cache_dir, self.on_log)
        self.on_log(f"building a wheel from {sdist.name} in {self.base_ref}")
        folder.parent.mkdir(parents=True, exist_ok=True)
        out = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
        try:
            out.chmod(0o777)  # written by the container's non-root user
            outcome = self.engine.run_container(
                ContainerRequest(
                    image=self.base_ref,
                    command=build_command(sdist.name),
                    mounts=[Mount(str(sdist.parent), "/in"), Mount(str(out), "/out", read_only=False)],
                    env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "PIP_NO_INPUT": "1"},
                    timeout_s=BUILD_TIMEOUT_S,
                    labels={"tfmh.purpose": "sdist-build"},
                )
            )
            log_path = cachedirs.logs(self.cache_dir) / f"sdist-{sdist.name}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text(outcome.logs, encoding="utf-8")
            wheels = sorted(out.glob("*.whl"))
            if outcome.exit_code != 0 or len(wheels) != 1:
                tail = "\n".join(f"  | {line}" for line in outcome.logs.splitlines()[-15:])
                raise BuildError(
                    f"building a wheel from {sdist.name} in {self.base_ref} failed ({log_path}):\n{tail}"
                )
            if not usable_built_wheel(wheels[0].name, self.python):
                raise BuildError(
                    f"{sdist.name} built into {wheels[0].name}, which is neither pure Python nor for "
                    f"CPython {self.python} on linux"
                )
            shutil.rmtree(folder, ignore_errors=True)
            out.replace(folder)
            folder.chmod(0o755)
            return folder / wheels[0].name
        finally:
            shutil.rmtree(out, ignore_errors=True)
