"""mnist.npz for `data: mnist`: the real download and checksum code against a small npz of the same layout
served from 127.0.0.1 (no outside network); a wrong checksum or an unreachable URL makes only the mnist
cells unavailable, with the reason."""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import io
import socket
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness import cachedirs
from harness.execution.datasets import (
    MNIST_SHA256,
    MNIST_URL,
    DataSource,
    check_data,
    ensure_mnist,
    needs_mnist,
    prepare_data,
)
from harness.matrix.config import load_matrix
from harness.matrix.plan import expand

ROOT = Path(__file__).resolve().parents[2]


def small_mnist() -> bytes:
    """An npz with the keras.datasets.mnist layout (uint8 images 28x28, uint8 labels), 64 + 32 samples."""
    rs = np.random.RandomState(0)
    buf = io.BytesIO()
    np.savez(
        buf,
        x_train=rs.randint(0, 256, size=(64, 28, 28)).astype(np.uint8),
        y_train=rs.randint(0, 10, size=64).astype(np.uint8),
        x_test=rs.randint(0, 256, size=(32, 28, 28)).astype(np.uint8),
        y_test=rs.randint(0, 10, size=32).astype(np.uint8),
    )
    return buf.getvalue()


@pytest.fixture
def server() -> Iterator[tuple[str, bytes, list[str]]]:
    """(base URL, served bytes, request paths) of a local HTTP server with /mnist.npz."""
    body = small_mnist()
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path != "/mnist.npz":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", body, hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MATRIX = textwrap.dedent(
    """\
    version: 1
    images:
      tf2.15-py3.11: {tf: "2.15.1", package: tensorflow-cpu==2.15.1, python: "3.11", base: {kind: bootstrap}}
    workloads:
      mlp_fit: {params: {input: numpy, data: [synthetic, mnist]}}
    profiles:
      t: {repeats: 1}
    """
)


@pytest.fixture
def cells(tmp_path: Path) -> list:
    path = tmp_path / "matrix.yaml"
    path.write_text(MATRIX, encoding="utf-8")
    return expand(load_matrix(path), "t").cells


def test_pinned_source_is_the_keras_one() -> None:
    assert MNIST_URL == "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
    assert MNIST_SHA256 == "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"


def test_download_verifies_and_caches_once(tmp_path: Path, server) -> None:
    base, body, hits = server
    source = DataSource(url=f"{base}/mnist.npz", sha256=hashlib.sha256(body).hexdigest(), timeout_s=10)
    status = ensure_mnist(tmp_path / "cache", source=source)
    assert status.available and status.downloaded
    assert status.data_dir == cachedirs.mnist(tmp_path / "cache")
    stored = status.data_dir / "mnist.npz"
    assert stored.read_bytes() == body
    assert stored.stat().st_mode & 0o777 == 0o644 and status.data_dir.stat().st_mode & 0o777 == 0o755
    assert [p.name for p in status.data_dir.iterdir()] == ["mnist.npz"]  # no partial files left
    again = ensure_mnist(tmp_path / "cache", source=source)
    assert again.available and not again.downloaded
    assert hits == ["/mnist.npz"]  # fetched once


def test_the_payload_loads_what_was_fetched(tmp_path: Path, server) -> None:
    base, body, _ = server
    source = DataSource(url=f"{base}/mnist.npz", sha256=hashlib.sha256(body).hexdigest(), timeout_s=10)
    status = ensure_mnist(tmp_path, source=source)
    assert status.data_dir is not None
    spec = importlib.util.spec_from_file_location("payload_data", ROOT / "harness" / "payload" / "data.py")
    assert spec is not None and spec.loader is not None
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    arrays = data.mnist(str(status.data_dir), 64, 32)
    assert arrays["x_train"].shape == (64, 28, 28) and arrays["x_train"].dtype == np.float32
    assert float(arrays["x_train"].max()) <= 1.0 and arrays["y_eval"].shape == (32,)


def test_wrong_checksum_is_unavailable_and_nothing_is_kept(tmp_path: Path, server) -> None:
    base, _, _ = server
    source = DataSource(url=f"{base}/mnist.npz", sha256="0" * 64, timeout_s=10)
    status = ensure_mnist(tmp_path, source=source)
    assert not status.available
    assert status.reason is not None and status.reason.startswith("mnist.npz from 127.0.0.1:")
    assert "wrong checksum" in status.reason and "pinned 000000000000" in status.reason
    assert status.detail and "0" * 64 in status.detail
    assert not (cachedirs.mnist(tmp_path) / "mnist.npz").exists()
    assert list(cachedirs.mnist(tmp_path).iterdir()) == []


def test_unreachable_url_is_unavailable_with_a_short_reason(tmp_path: Path) -> None:
    port = _closed_port()
    source = DataSource(url=f"http://127.0.0.1:{port}/mnist.npz", sha256="0" * 64, timeout_s=5)
    status = ensure_mnist(tmp_path, source=source)
    assert not status.available
    assert status.reason == f"mnist.npz: download from 127.0.0.1:{port} failed (connection refused)"
    assert status.detail and "URLError" in status.detail


def test_http_error_is_named(tmp_path: Path, server) -> None:
    base, _, _ = server
    status = ensure_mnist(tmp_path, source=DataSource(url=f"{base}/other.npz", sha256="0" * 64))
    assert status.reason is not None and status.reason.endswith("failed (HTTP 404)")


def test_a_cached_file_with_a_bad_checksum_is_fetched_again(tmp_path: Path, server) -> None:
    base, body, hits = server
    (cachedirs.mnist(tmp_path)).mkdir(parents=True)
    (cachedirs.mnist(tmp_path) / "mnist.npz").write_bytes(b"truncated")
    source = DataSource(url=f"{base}/mnist.npz", sha256=hashlib.sha256(body).hexdigest())
    assert ensure_mnist(tmp_path, source=source).downloaded
    assert hits == ["/mnist.npz"]


def test_data_dir_copy_is_used_and_verified(tmp_path: Path) -> None:
    body = small_mnist()
    copy = tmp_path / "airgap"
    copy.mkdir()
    (copy / "mnist.npz").write_bytes(body)
    good = DataSource(url="http://127.0.0.1:9/never", sha256=hashlib.sha256(body).hexdigest())
    status = ensure_mnist(tmp_path / "cache", data_dir=copy, source=good)
    assert status.available and status.data_dir == copy and not status.downloaded
    bad = ensure_mnist(tmp_path / "cache", data_dir=copy, source=DataSource(sha256="1" * 64))
    assert not bad.available and "wrong checksum" in (bad.reason or "")
    empty = ensure_mnist(tmp_path / "cache", data_dir=tmp_path, source=good)
    assert empty.reason == f"--data-dir {tmp_path} has no mnist.npz"


def test_only_mnist_cells_become_unavailable(tmp_path: Path, cells: list) -> None:
    assert sorted(needs_mnist(c) for c in cells) == [False, True]
    source = DataSource(url=f"http://127.0.0.1:{_closed_port()}/mnist.npz", timeout_s=5)
    out, status = prepare_data(cells, tmp_path, source=source)
    assert status is not None and not status.available
    by_data = {c.params["data"]: c for c in out}
    assert by_data["synthetic"].available
    assert not by_data["mnist"].available and "connection refused" in (by_data["mnist"].reason or "")


def test_no_mnist_cell_means_no_download(tmp_path: Path, cells: list) -> None:
    synthetic = [c for c in cells if not needs_mnist(c)]
    out, status = prepare_data(synthetic, tmp_path, source=DataSource(url="http://127.0.0.1:9/x"))
    assert status is None and out == synthetic
    assert not (tmp_path / "data").exists()


def test_mnist_cells_keep_running_when_the_file_is_there(tmp_path: Path, cells: list, server) -> None:
    base, body, _ = server
    source = DataSource(url=f"{base}/mnist.npz", sha256=hashlib.sha256(body).hexdigest())
    out, status = prepare_data(cells, tmp_path, source=source)
    assert status is not None and status.available and all(c.available for c in out)


def test_seed_profile_is_the_article_experiment() -> None:
    plan = expand(load_matrix(ROOT / "matrix.yaml"), "seed")
    assert {c.image.name for c in plan.cells} == {"tf2.15-py3.11", "tf2.21-py3.11"}
    for cell in plan.cells:
        assert cell.workload == "mlp_fit" and cell.device == "cpu" and needs_mnist(cell)
        assert cell.image.base.kind == "bootstrap"
        p = cell.params
        assert (p["epochs"], p["batch_size"], p["input"]) == (5, 32, "numpy")
        assert (p["train_samples"], p["eval_samples"]) == (60000, 10000)


def test_plan_decides_the_data_as_run_does_without_downloading(tmp_path: Path, cells: list, server) -> None:
    base, body, hits = server
    source = DataSource(url=f"{base}/mnist.npz", sha256=hashlib.sha256(body).hexdigest())
    out, note = check_data(cells, tmp_path / "cache", source=source)
    assert all(c.available for c in out) and hits == []  # runnable: run will download it; plan did not
    assert note == "mnist.npz: not cached; `harness run` downloads it once from " + base.split("//")[1] + (
        " (sha256 pinned)"
    )
    prepare_data(cells, tmp_path / "cache", source=source)  # run fetches it
    _, note = check_data(cells, tmp_path / "cache", source=source)
    assert note is not None and note.startswith("mnist.npz: cached at ") and hits == ["/mnist.npz"]
    empty = tmp_path / "airgap"
    empty.mkdir()
    planned, note = check_data(cells, tmp_path / "cache", data_dir=empty, source=source)
    ran, _ = prepare_data(cells, tmp_path / "cache", data_dir=empty, source=source)
    assert [(c.available, c.reason) for c in planned] == [(c.available, c.reason) for c in ran]
    assert note == f"--data-dir {empty} has no mnist.npz"
    synthetic = [c for c in cells if not needs_mnist(c)]
    assert check_data(synthetic, tmp_path / "cache", source=source) == (synthetic, None)
