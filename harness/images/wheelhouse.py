"""Host-side wheelhouse: ``pip download`` of an image's requirements for its Python and platform into
``<cache>/wheelhouse/<python>/``, with a lock (file name + sha256 of every wheel the requirements resolved to)
so builds install exactly those, offline. With a lock and matching wheels present, no network is used."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import cachedirs
from harness.atomicfile import write_text
from harness.digest import doc_sha256, file_sha256
from harness.errors import BuildError
from harness.subproc import run_logged

LOCK_VERSION = 1
#: oldest manylinux glibc minor a wheel may target (manylinux_2_5 == manylinux1)
_MIN_GLIBC_MINOR = 5


@dataclass(frozen=True)
class LockedWheel:
    file: str
    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class WheelLock:
    """What a requirement set resolved to for one Python/platform."""

    requirements: tuple[str, ...]
    python: str
    platforms: tuple[str, ...]
    wheels: tuple[LockedWheel, ...]
    #: resolved without the requirements' dependencies (installed with ``--no-deps``)
    no_deps: bool = False

    @property
    def key(self) -> str:
        return lock_key(self.requirements, self.python, self.platforms, self.no_deps)

    def wheel_hashes(self) -> list[tuple[str, str]]:
        return sorted((w.file, w.sha256) for w in self.wheels)

    def requirements_txt(self) -> str:
        """A pip requirements file pinning every wheel by version and hash (``--require-hashes``)."""
        lines = [f"{w.name}=={w.version} --hash=sha256:{w.sha256}" for w in sorted(self.wheels, key=_by_name)]
        return "".join(line + "\n" for line in lines)

    def to_json(self) -> str:
        doc = {
            "lock_version": LOCK_VERSION,
            "requirements": list(self.requirements),
            "python": self.python,
            "platforms": list(self.platforms),
            "wheels": [asdict(w) for w in sorted(self.wheels, key=_by_name)],
        }
        if self.no_deps:
            doc["no_deps"] = True
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> WheelLock:
        doc = json.loads(text)
        if doc.get("lock_version") != LOCK_VERSION:
            raise ValueError(f"lock_version {doc.get('lock_version')!r} != {LOCK_VERSION}")
        return cls(
            requirements=tuple(doc["requirements"]),
            python=str(doc["python"]),
            platforms=tuple(doc["platforms"]),
            wheels=tuple(LockedWheel(**w) for w in doc["wheels"]),
            no_deps=bool(doc.get("no_deps", False)),
        )


def _by_name(w: LockedWheel) -> str:
    return w.name


def platform_tags(glibc_minor: int, arch: str = "x86_64") -> tuple[str, ...]:
    """Every manylinux tag a system with glibc 2.<glibc_minor> accepts (pip does not expand them itself)."""
    tags = [f"manylinux_2_{m}_{arch}" for m in range(glibc_minor, _MIN_GLIBC_MINOR - 1, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{name}_{arch}" for minor, name in legacy.items() if minor <= glibc_minor]
    return tuple(tags)


def lock_key(
    requirements: Sequence[str], python: str, platforms: Sequence[str], no_deps: bool = False
) -> str:
    doc: dict[str, object] = {
        "requirements": sorted(requirements),
        "python": python,
        "platforms": sorted(platforms),
    }
    if no_deps:  # only then: the keys of existing locks stay as they were
        doc["no_deps"] = True
    return doc_sha256(doc, 16)


def canonical_name(name: str) -> str:
    return name.replace("_", "-").replace(".", "-").lower()


def parse_wheel_filename(filename: str) -> tuple[str, str]:
    """(canonical distribution name, version) from a wheel file name."""
    if not filename.endswith(".whl"):
        raise ValueError(f"not a wheel: {filename}")
    parts = filename[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        raise ValueError(f"not a wheel file name: {filename}")
    return canonical_name(parts[0]), parts[1]


def lock_path(cache_dir: Path, python: str, key: str) -> Path:
    return cachedirs.wheel_locks(cache_dir, python) / f"{key}.json"


def pip_download_command(
    python: str, platforms: Sequence[str], dest: Path, find_links: Path, args: Sequence[str]
) -> list[str]:
    """``pip download`` of wheels only for another interpreter/platform; local wheels win ties."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-cache-dir", "--disable-pip-version-check"]
    cmd += ["--only-binary=:all:", "--implementation", "cp", "--python-version", python]
    for tag in platforms:
        cmd += ["--platform", tag]
    cmd += ["--find-links", str(find_links), "--dest", str(dest)]
    return cmd + list(args)


def read_lock(
    cache_dir: Path, requirements: Sequence[str], python: str, platforms: Sequence[str], no_deps: bool = False
) -> WheelLock | None:
    path = lock_path(cache_dir, python, lock_key(requirements, python, platforms, no_deps))
    try:
        return WheelLock.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def missing_or_mismatched(lock: WheelLock, cache_dir: Path) -> list[str]:
    """File names of locked wheels that are absent from the wheelhouse or whose sha256 differs."""
    wdir = cachedirs.wheelhouse(cache_dir, lock.python)
    bad = []
    for wheel in lock.wheels:
        path = wdir / wheel.file
        if not path.is_file() or file_sha256(path) != wheel.sha256:
            bad.append(wheel.file)
    return bad


def _download(
    args: Sequence[str],
    python: str,
    platforms: Sequence[str],
    cache_dir: Path,
    what: str,
    on_log: Callable[[str], None],
    log_path: Path,
) -> Path:
    """Run pip download into a fresh temporary dir inside the wheelhouse and return that dir."""
    wdir = cachedirs.wheelhouse(cache_dir, python)
    wdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=wdir))
    env = {**os.environ, "PIP_NO_INPUT": "1"}
    try:
        run_logged(
            pip_download_command(python, platforms, tmp, wdir, args),
            what=what,
            on_log=on_log,
            log_path=log_path,
            env=env,
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _store(download_dir: Path, wdir: Path) -> list[LockedWheel]:
    """Move downloaded wheels into the wheelhouse and describe them; non-wheels are an error."""
    wheels = []
    for path in sorted(p for p in download_dir.iterdir() if p.is_file()):
        name = path.name
        if not name.endswith(".whl"):
            raise BuildError(f"pip produced a non-wheel {name}; only wheels are allowed")
        sha = file_sha256(path)
        target = wdir / name
        if target.is_file() and file_sha256(target) != sha:
            target.unlink()
        if not target.is_file():
            path.replace(target)
        dist, version = parse_wheel_filename(name)
        wheels.append(LockedWheel(file=name, name=dist, version=version, sha256=sha))
    return wheels


def resolve_lock(
    requirements: Sequence[str],
    python: str,
    platforms: Sequence[str],
    cache_dir: Path,
    *,
    image: str,
    on_log: Callable[[str], None],
    no_deps: bool = False,
) -> WheelLock:
    """The lock for a requirement set: read it, or resolve + download with pip and write it. With
    ``no_deps`` only the named requirements are downloaded (their dependencies are another lock's)."""
    reqs = tuple(requirements)
    existing = read_lock(cache_dir, reqs, python, platforms, no_deps)
    if existing is not None or not reqs:
        return existing or WheelLock(reqs, python, tuple(platforms), (), no_deps)
    key = lock_key(reqs, python, platforms, no_deps)
    log_path = cachedirs.logs(cache_dir) / f"wheels-{image}-{key}.log"
    wdir = cachedirs.wheelhouse(cache_dir, python)
    what = f"wheel download for image {image} ({' '.join(reqs)})"
    args = ["--no-deps", *reqs] if no_deps else list(reqs)
    tmp = _download(args, python, platforms, cache_dir, what, on_log, log_path)
    try:
        wheels = _store(tmp, wdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lock = WheelLock(reqs, python, tuple(platforms), tuple(wheels), no_deps)
    write_text(lock_path(cache_dir, python, key), lock.to_json())
    return lock


def fetch_locked(lock: WheelLock, cache_dir: Path, *, image: str, on_log: Callable[[str], None]) -> None:
    """Make sure every locked wheel is in the wheelhouse with its hash; re-download the pins if not."""
    bad = missing_or_mismatched(lock, cache_dir)
    if not bad:
        return
    on_log(f"re-fetching {len(bad)} locked wheel(s) for {image}: {', '.join(bad[:5])}")
    wdir = cachedirs.wheelhouse(cache_dir, lock.python)
    for name in bad:
        (wdir / name).unlink(missing_ok=True)
    req_file = cachedirs.wheel_locks(cache_dir, lock.python) / f"{lock.key}.requirements.txt"
    req_file.write_text(lock.requirements_txt(), encoding="utf-8")
    log_path = cachedirs.logs(cache_dir) / f"wheels-{image}-{lock.key}-refetch.log"
    args = ["--no-deps", "--require-hashes", "-r", str(req_file)]
    tmp = _download(
        args, lock.python, lock.platforms, cache_dir, f"wheel re-fetch for {image}", on_log, log_path
    )
    try:
        _store(tmp, wdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    still = missing_or_mismatched(lock, cache_dir)
    if still:
        raise BuildError(
            f"wheels for image {image} do not match the lock after re-download: {', '.join(still)}"
        )


def link_into(lock: WheelLock, cache_dir: Path, dest: Path) -> None:
    """Hard-link (or copy) the locked wheels into ``dest`` and write ``dest/lock.txt``."""
    dest.mkdir(parents=True, exist_ok=True)
    wdir = cachedirs.wheelhouse(cache_dir, lock.python)
    for wheel in lock.wheels:
        src, dst = wdir / wheel.file, dest / wheel.file
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    (dest / "lock.txt").write_text(lock.requirements_txt(), encoding="utf-8")
