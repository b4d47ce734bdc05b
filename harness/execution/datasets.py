"""Data the payload reads from a read-only mount. ``data: mnist`` (the seed article's data) is the standard
Keras ``mnist.npz``: fetched once on the host into ``<cache>/data/mnist/``, checked against a pinned sha256,
and mounted read-only at ``/data`` (the local runner points the spec at the host folder instead).

Air-gapped hosts: ``--data-dir DIR`` with a copy of ``mnist.npz`` (it must have the same checksum), or carry
the cache folder across. When the file cannot be had (no network, wrong checksum) the mnist cells are
unavailable with the reason and every other cell still runs.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import cachedirs
from harness.atomicfile import replacing
from harness.digest import file_sha256
from harness.matrix.plan import Cell

#: where keras.datasets.mnist.load_data downloads it from
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
#: keras.datasets.mnist.load_data's file_hash (keras-team/keras, keras/src/datasets/mnist.py)
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_FILE = "mnist.npz"
#: a mirror of the same file (the checksum stays pinned)
ENV_MNIST_URL = "TFMH_MNIST_URL"
DOWNLOAD_TIMEOUT_S = 60.0
_BLOCK = 1 << 16

OnLog = Callable[[str], None]


@dataclass(frozen=True)
class DataSource:
    """Where mnist.npz comes from and what it must hash to (tests inject a local server and its hash)."""

    url: str = MNIST_URL
    sha256: str = MNIST_SHA256
    timeout_s: float = DOWNLOAD_TIMEOUT_S

    @classmethod
    def default(cls) -> DataSource:
        return cls(url=os.environ.get(ENV_MNIST_URL) or MNIST_URL)


@dataclass(frozen=True)
class DataStatus:
    """Whether mnist.npz can be had here; ``data_dir`` is the folder to mount read-only (holding it)."""

    available: bool
    data_dir: Path | None = None
    reason: str | None = None
    #: the raw error behind ``reason``
    detail: str | None = None
    downloaded: bool = False


class DataUnavailable(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def _host(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    return parsed.netloc or url


def short_download_error(exc: BaseException) -> str:
    """``no DNS``, ``connection refused``, ``timed out``, ``HTTP 404`` … for a failed download."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    inner: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(inner, socket.gaierror):
        return "no DNS"
    if isinstance(inner, ConnectionRefusedError):
        return "connection refused"
    if isinstance(inner, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(inner, OSError) and inner.strerror:
        return inner.strerror
    return " ".join(str(inner).split())[:100] or type(inner).__name__


def download(url: str, dest: Path, sha256: str, timeout_s: float, on_log: OnLog) -> None:
    """Fetch ``url`` to ``dest`` (atomically: nothing is left behind on failure) only if it hashes to
    ``sha256``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.parent.chmod(0o755)  # the container user (uid 1000) reads it through the read-only mount
    digest = hashlib.sha256()
    size = 0
    on_log(f"downloading {url}")
    try:
        with replacing(dest, mode=0o644) as fh:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                for block in iter(lambda: resp.read(_BLOCK), b""):
                    digest.update(block)
                    fh.write(block)
                    size += len(block)
            got = digest.hexdigest()
            if got != sha256:
                why = f"wrong checksum (sha256 {got[:12]}…, pinned {sha256[:12]}…)"
                raise DataUnavailable(
                    f"mnist.npz from {_host(url)}: {why}",
                    f"GET {url}: {size} bytes with sha256 {got}; expected {sha256}",
                )
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise DataUnavailable(
            f"mnist.npz: download from {_host(url)} failed ({short_download_error(exc)})",
            f"GET {url}: {type(exc).__name__}: {exc}",
        ) from exc
    on_log(f"mnist.npz: {size} bytes, sha256 verified, stored in {dest.parent}")


def ensure_mnist(
    cache_dir: Path,
    *,
    data_dir: Path | None = None,
    source: DataSource | None = None,
    on_log: OnLog = lambda line: None,
) -> DataStatus:
    """The folder holding a verified mnist.npz: ``data_dir`` (a copy the user provides; never written to),
    else the cache (downloaded once). Never raises for a missing network or a bad file: says why instead."""
    src = source or DataSource.default()
    if data_dir is not None:
        path = data_dir / MNIST_FILE
        if not path.is_file():
            return DataStatus(False, reason=f"--data-dir {data_dir} has no {MNIST_FILE}")
        got = file_sha256(path)
        if got != src.sha256:
            return DataStatus(
                False,
                reason=f"{path}: wrong checksum (sha256 {got[:12]}…, pinned {src.sha256[:12]}…)",
                detail=f"{path}: sha256 {got}; expected {src.sha256}",
            )
        return DataStatus(True, data_dir)
    folder = cachedirs.mnist(cache_dir)
    path = folder / MNIST_FILE
    if path.is_file():
        if file_sha256(path) == src.sha256:
            return DataStatus(True, folder)
        on_log(f"{path}: checksum differs from the pin; downloading it again")
        path.unlink()
    try:
        download(src.url, path, src.sha256, src.timeout_s, on_log)
    except DataUnavailable as exc:
        on_log(exc.detail)
        return DataStatus(False, reason=exc.reason, detail=exc.detail)
    return DataStatus(True, folder, downloaded=True)


def needs_mnist(cell: Cell) -> bool:
    return cell.params.get("data") == "mnist"


def prepare_data(
    cells: list[Cell],
    cache_dir: Path,
    *,
    data_dir: Path | None = None,
    source: DataSource | None = None,
    on_log: OnLog = lambda line: None,
) -> tuple[list[Cell], DataStatus | None]:
    """Make mnist.npz available when a runnable cell needs it. Returns the cells (mnist cells marked
    unavailable with the reason when it cannot be had) and the status (None: no cell needs data)."""
    if not any(c.available and needs_mnist(c) for c in cells):
        return cells, None
    status = ensure_mnist(cache_dir, data_dir=data_dir, source=source, on_log=on_log)
    if status.available:
        return cells, status
    reason = status.reason or "mnist.npz unavailable"
    return [c.unavailable(reason) if c.available and needs_mnist(c) else c for c in cells], status


def check_data(
    cells: list[Cell], cache_dir: Path, *, data_dir: Path | None = None, source: DataSource | None = None
) -> tuple[list[Cell], str | None]:
    """What `harness plan` says of the data, decided as `harness run` decides it but without downloading:
    a ``--data-dir`` copy is checked (missing or wrong: its cells are unavailable, as in `run`), a cached
    copy is verified; otherwise the cells stay runnable and the note says `run` downloads it once. Returns
    the cells and a one-line note (None: no runnable cell needs data)."""
    if not any(c.available and needs_mnist(c) for c in cells):
        return cells, None
    src = source or DataSource.default()
    if data_dir is not None:
        status = ensure_mnist(cache_dir, data_dir=data_dir, source=src)  # reads the copy, writes nothing
        if not status.available:
            reason = status.reason or "mnist.npz unavailable"
            return [c.unavailable(reason) if c.available and needs_mnist(c) else c for c in cells], reason
        return cells, f"mnist.npz: {data_dir / MNIST_FILE} (sha256 verified)"
    path = cachedirs.mnist(cache_dir) / MNIST_FILE
    if path.is_file() and file_sha256(path) == src.sha256:
        return cells, f"mnist.npz: cached at {path} (sha256 verified)"
    if path.is_file():
        return cells, f"mnist.npz: {path} fails its pinned sha256; `harness run` downloads it again"
    return (
        cells,
        f"mnist.npz: not cached; `harness run` downloads it once from {_host(src.url)} (sha256 pinned)",
    )
