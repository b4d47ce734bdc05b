"""Host-side wheelhouse: ``pip download`` of an image's requirements for its Python and platform into
``<cache>/wheelhouse/<python>/``, with a lock (file name + sha256 of every wheel the requirements resolved to)
so builds install exactly those, offline. With a lock and matching wheels present, no network is used.

A requirement set that pins its TF package exactly is resolved as of that release (harness.images.asof: pip
sees only files uploaded before it); the lock records that basis. Requirements with no wheel as of then are
built from their sdist in a builder base of the image's suite (harness.images.sdists) and locked with their
source's hash."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness import cachedirs
from harness.atomicfile import write_text
from harness.digest import doc_sha256, file_sha256
from harness.errors import BuildError
from harness.images.asof import Basis, Fetch, policy_for, release_basis
from harness.images.pipcmd import pip_download_command, pip_env
from harness.images.sdists import WheelBuilder, fetch_sdist, local_platform, unsatisfied_requirement
from harness.subproc import run_logged

LOCK_VERSION = 2
#: lock versions this harness reads (1: no basis, no built wheels)
READABLE_LOCK_VERSIONS = (1, 2)
#: at most this many sdists are built for one lock
MAX_BUILT_SDISTS = 8
#: oldest manylinux glibc minor a wheel may target (manylinux_2_5 == manylinux1)
_MIN_GLIBC_MINOR = 5


@dataclass(frozen=True)
class LockedWheel:
    file: str
    name: str
    version: str
    sha256: str
    #: for a wheel built here: the sdist it was built from, and that sdist's sha256
    source: str | None = None
    source_sha256: str | None = None


@dataclass(frozen=True)
class WheelLock:
    """What a requirement set resolved to for one Python/platform."""

    requirements: tuple[str, ...]
    python: str
    platforms: tuple[str, ...]
    wheels: tuple[LockedWheel, ...]
    #: what the set was resolved against (None: the index as it was at lock time)
    basis: Basis | None = None
    #: resolved without the requirements' dependencies (installed with ``--no-deps``)
    no_deps: bool = False

    @property
    def key(self) -> str:
        return lock_key(
            self.requirements,
            self.python,
            self.platforms,
            lock_policy(self.requirements, self.no_deps),
            self.no_deps,
        )

    @property
    def uploaded_prior_to(self) -> str:
        return self.basis.uploaded_prior_to if self.basis is not None else ""

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
            "basis": self.basis.to_doc() if self.basis is not None else None,
            "wheels": [asdict(w) for w in sorted(self.wheels, key=_by_name)],
        }
        if self.no_deps:
            doc["no_deps"] = True
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> WheelLock:
        doc = json.loads(text)
        if doc.get("lock_version") not in READABLE_LOCK_VERSIONS:
            raise ValueError(f"lock_version {doc.get('lock_version')!r} not in {READABLE_LOCK_VERSIONS}")
        basis = doc.get("basis")
        return cls(
            requirements=tuple(doc["requirements"]),
            python=str(doc["python"]),
            platforms=tuple(doc["platforms"]),
            wheels=tuple(LockedWheel(**w) for w in doc["wheels"]),
            basis=Basis(**basis) if isinstance(basis, dict) else None,
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
    requirements: Sequence[str],
    python: str,
    platforms: Sequence[str],
    policy: str | None = None,
    no_deps: bool = False,
) -> str:
    """The lock's file name: its inputs and resolution policy (not the outcome: it is known offline)."""
    doc: dict[str, object] = {
        "requirements": sorted(requirements),
        "python": python,
        "platforms": sorted(platforms),
    }
    if policy is not None:
        doc["policy"] = policy
    if no_deps:  # only then: the keys of other locks stay as they were
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


def lock_policy(requirements: Sequence[str], no_deps: bool) -> str | None:
    """The resolution policy of a set: as of its anchor's release, except for a no-deps set (it downloads
    exactly the pins it names: there is nothing to resolve)."""
    return None if no_deps else policy_for(requirements)


def read_lock(
    cache_dir: Path, requirements: Sequence[str], python: str, platforms: Sequence[str], no_deps: bool = False
) -> WheelLock | None:
    key = lock_key(requirements, python, platforms, lock_policy(requirements, no_deps), no_deps)
    path = lock_path(cache_dir, python, key)
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
    links: Path | None = None,
    uploaded_prior_to: str = "",
) -> Path:
    """Run pip download into a fresh temporary dir inside the wheelhouse and return that dir. Local wheels
    come from ``links`` (default: the whole wheelhouse)."""
    wdir = cachedirs.wheelhouse(cache_dir, python)
    wdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".download-", dir=wdir))
    try:
        run_logged(
            pip_download_command(python, platforms, tmp, links or wdir, args, uploaded_prior_to),
            what=what,
            on_log=on_log,
            log_path=log_path,
            env=pip_env(),
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


def _resolve_as_of(
    reqs: Sequence[str],
    python: str,
    platforms: Sequence[str],
    cache_dir: Path,
    basis: Basis,
    build: WheelBuilder | None,
    *,
    image: str,
    on_log: Callable[[str], None],
    log: Path,
) -> list[LockedWheel]:
    """pip download as of the basis; a requirement with no wheel then is built from its sdist (``build``)
    and offered to pip through a links folder of this resolution's own built wheels; repeat."""
    wdir = cachedirs.wheelhouse(cache_dir, python)
    wdir.mkdir(parents=True, exist_ok=True)
    links = Path(tempfile.mkdtemp(prefix=".links-", dir=wdir))
    sources: dict[str, tuple[str, str]] = {}  # built wheel file -> (sdist file, sdist sha256)
    local: set[str] = set()  # plain linux_* tags of built wheels: pip must accept them too
    what = f"wheel download for image {image} ({' '.join(reqs)}) as of {basis.uploaded_prior_to}"
    try:
        while True:
            try:
                tags = [*platforms, *sorted(local)]
                tmp = _download(
                    reqs, python, tags, cache_dir, what, on_log, log, links, basis.uploaded_prior_to
                )
                break
            except BuildError:
                missing = unsatisfied_requirement(log.read_text(encoding="utf-8", errors="replace"))
                if build is None or missing is None or len(sources) >= MAX_BUILT_SDISTS:
                    raise
                sdist = fetch_sdist(missing, python, cache_dir, basis.uploaded_prior_to, on_log, image)
                if any(src == sdist.name for src, _ in sources.values()):
                    raise
                wheel = build(sdist)
                shutil.copy2(wheel, links / wheel.name)
                local |= {tag for tag in [local_platform(wheel.name)] if tag}
                sources[wheel.name] = (sdist.name, file_sha256(sdist))
        try:
            wheels = _store(tmp, wdir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(links, ignore_errors=True)
    return [
        replace(w, source=sources[w.file][0], source_sha256=sources[w.file][1]) if w.file in sources else w
        for w in wheels
    ]


def resolve_lock(
    requirements: Sequence[str],
    python: str,
    platforms: Sequence[str],
    cache_dir: Path,
    *,
    image: str,
    on_log: Callable[[str], None],
    build_sdist: WheelBuilder | None = None,
    fetch: Fetch | None = None,
    no_deps: bool = False,
) -> WheelLock:
    """The lock for a requirement set: read it, or resolve + download with pip and write it. A set that pins
    its anchor exactly is resolved as of the anchor's upload (``fetch`` reads it from the index); its
    requirements with no wheel then are built from sdists with ``build_sdist`` (none: an error). With
    ``no_deps`` only the named requirements are downloaded (their dependencies are another lock's)."""
    reqs = tuple(requirements)
    existing = read_lock(cache_dir, reqs, python, platforms, no_deps)
    if existing is not None or not reqs:
        return existing or WheelLock(reqs, python, tuple(platforms), (), no_deps=no_deps)
    policy = lock_policy(reqs, no_deps)
    key = lock_key(reqs, python, platforms, policy, no_deps)
    log_path = cachedirs.logs(cache_dir) / f"wheels-{image}-{key}.log"
    try:
        basis = release_basis(reqs, fetch) if policy is not None else None
    except BuildError as exc:
        raise BuildError(f"image {image}: {exc}") from exc
    if basis is not None:
        on_log(f"resolving {' '.join(reqs)} as of {basis.uploaded_prior_to} (the upload of {basis.anchor})")
        wheels = _resolve_as_of(
            reqs, python, platforms, cache_dir, basis, build_sdist, image=image, on_log=on_log, log=log_path
        )
    else:
        what = f"wheel download for image {image} ({' '.join(reqs)})"
        args = ["--no-deps", *reqs] if no_deps else list(reqs)
        tmp = _download(args, python, platforms, cache_dir, what, on_log, log_path)
        try:
            wheels = _store(tmp, cachedirs.wheelhouse(cache_dir, python))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    lock = WheelLock(reqs, python, tuple(platforms), tuple(wheels), basis, no_deps)
    write_text(lock_path(cache_dir, python, key), lock.to_json())
    return lock


def fetch_locked(lock: WheelLock, cache_dir: Path, *, image: str, on_log: Callable[[str], None]) -> None:
    """Make sure every locked wheel is in the wheelhouse with its hash; re-download the pins if not."""
    bad = missing_or_mismatched(lock, cache_dir)
    if not bad:
        return
    built = sorted(w.file for w in lock.wheels if w.source is not None and w.file in bad)
    if built:
        raise BuildError(
            f"image {image}: wheel(s) built from sdists are missing from the wheelhouse: {', '.join(built)}; "
            f"remove {lock_path(cache_dir, lock.python, lock.key)} to resolve and build them again"
        )
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
