"""Bootstrap base images: a Debian root filesystem made with debootstrap from a mirror, tarred and imported
into the engine as ``tfmh/base-<suite>:<recipe-hash>`` (no registry needed). A builder base
(``tfmh/builder-<suite>``: the same plus a C toolchain and the Python headers) is made only when a requirement
has no wheel and its sdist must be built (harness.images.sdists); images never contain it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import cachedirs
from harness.digest import doc_sha256
from harness.errors import BuildError
from harness.images.engine import DockerEngine
from harness.matrix.config import BootstrapBase
from harness.matrix.testedconfigs import SUITE_GLIBC_MINOR, SUITE_PYTHON
from harness.subproc import run_logged

#: bump when the recipe (commands, cleanup, import changes) changes in a way the fields below don't capture
BOOTSTRAP_RECIPE_VERSION = 1
BASE_PACKAGES: tuple[str, ...] = ("python3", "python3-venv", "python3-pip", "ca-certificates", "procps")
#: what a builder base adds: what ``pip wheel`` of a C extension needs
BUILDER_PACKAGES: tuple[str, ...] = ("build-essential", "python3-dev")
IMPORT_CHANGES: tuple[str, ...] = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/sh"]',
    "LABEL tfmh=1",
)
#: removed from the rootfs before tarring (package caches and lists are useless without network)
CLEAN_GLOBS: tuple[str, ...] = ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "var/log/*.log")


@dataclass(frozen=True)
class BaseRecipe:
    """Everything that determines a bootstrap base. Its hash is the image tag."""

    suite: str
    mirror: str
    packages: tuple[str, ...] = BASE_PACKAGES
    variant: str = "minbase"
    version: int = BOOTSTRAP_RECIPE_VERSION
    #: "base" (the images' base) or "builder" (for building sdists); names the repository
    role: str = "base"

    @property
    def rootfs_digest(self) -> str:
        """Hash of what goes into the root filesystem tarball."""
        doc = {
            "suite": self.suite,
            "mirror": self.mirror.rstrip("/"),
            "packages": sorted(self.packages),
            "variant": self.variant,
            "version": self.version,
        }
        return doc_sha256(doc, 16)

    @property
    def digest(self) -> str:
        """Hash of the imported image: the rootfs plus the image config set on import."""
        return doc_sha256({"rootfs": self.rootfs_digest, "changes": list(IMPORT_CHANGES)}, 16)

    @property
    def repository(self) -> str:
        return f"tfmh/{self.role}-{self.suite}"

    @property
    def ref(self) -> str:
        return f"{self.repository}:{self.digest}"

    @property
    def python(self) -> str:
        return SUITE_PYTHON[self.suite]

    @property
    def glibc_minor(self) -> int:
        return SUITE_GLIBC_MINOR[self.suite]


def recipe_for(base: BootstrapBase) -> BaseRecipe:
    return BaseRecipe(suite=base.suite, mirror=base.mirror)


def builder_recipe_for(base: BootstrapBase) -> BaseRecipe:
    """The builder of a base: the same suite and mirror, plus a compiler and the Python headers."""
    return BaseRecipe(base.suite, base.mirror, (*BASE_PACKAGES, *BUILDER_PACKAGES), role="builder")


def debootstrap_command(recipe: BaseRecipe, target: Path) -> list[str]:
    return [
        "debootstrap",
        f"--variant={recipe.variant}",
        "--include=" + ",".join(recipe.packages),
        recipe.suite,
        str(target),
        recipe.mirror,
    ]


def tar_command(rootfs: Path, tar_path: Path) -> list[str]:
    return ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(tar_path), "."]


def clean_rootfs(rootfs: Path) -> None:
    for pattern in CLEAN_GLOBS:
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def tarball_path(recipe: BaseRecipe, cache_dir: Path) -> Path:
    return cachedirs.bases(cache_dir) / f"{recipe.role}-{recipe.suite}-{recipe.rootfs_digest}.tar"


def make_tarball(recipe: BaseRecipe, cache_dir: Path, on_log: Callable[[str], None]) -> Path:
    """debootstrap into the cache, clean, tar; the unpacked rootfs is removed afterwards."""
    if shutil.which("debootstrap") is None:
        raise BuildError(
            f"bootstrap base {recipe.ref}: debootstrap is not installed (apt-get install debootstrap)"
        )
    work = cachedirs.bases(cache_dir) / f"rootfs-{recipe.role}-{recipe.suite}-{recipe.rootfs_digest}"
    tar_path = tarball_path(recipe, cache_dir)
    partial = tar_path.with_suffix(".tar.partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log_path = (
        cachedirs.logs(cache_dir) / f"bootstrap-{recipe.role}-{recipe.suite}-{recipe.rootfs_digest}.log"
    )
    try:
        run_logged(
            debootstrap_command(recipe, work / "rootfs"),
            what=f"debootstrap of base {recipe.ref} from {recipe.mirror}",
            on_log=on_log,
            log_path=log_path,
        )
        clean_rootfs(work / "rootfs")
        run_logged(
            tar_command(work / "rootfs", partial),
            what=f"tar of base {recipe.ref}",
            on_log=on_log,
            log_path=log_path.with_suffix(".tar.log"),
        )
        partial.replace(tar_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        partial.unlink(missing_ok=True)
    return tar_path


def ensure_base(
    base: BootstrapBase, engine: DockerEngine, cache_dir: Path, on_log: Callable[[str], None]
) -> tuple[str, str]:
    """(tag, image ID) of the bootstrap base; imports the cached tarball or bootstraps when missing."""
    return ensure_recipe(recipe_for(base), engine, cache_dir, on_log)


def ensure_recipe(
    recipe: BaseRecipe, engine: DockerEngine, cache_dir: Path, on_log: Callable[[str], None]
) -> tuple[str, str]:
    """(tag, image ID) of a recipe's image; imports the cached tarball or bootstraps when missing."""
    image_id = engine.image_id(recipe.ref)
    if image_id is not None:
        return recipe.ref, image_id
    tar_path = tarball_path(recipe, cache_dir)
    if not tar_path.is_file():
        on_log(f"bootstrapping {recipe.ref} ({recipe.suite} from {recipe.mirror})")
        make_tarball(recipe, cache_dir, on_log)
    on_log(f"importing {tar_path} as {recipe.ref}")
    image_id = engine.import_rootfs(tar_path, recipe.repository, recipe.digest, list(IMPORT_CHANGES))
    return recipe.ref, image_id
