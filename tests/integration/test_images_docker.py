"""Real builds and runs against the local Docker engine (opt-in: TFMH_DOCKER_TESTS=1 or --run-docker).

Builds the bootstrap base (debootstrap) and two TF 2.x CPU images once per session, reusing the normal cache
dir (TFMH_CACHE_DIR or ~/.cache/tf-matrix-harness), so a warm cache makes the session fast.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cachedirs import default_root
from harness.errors import BuildError
from harness.images.build import ensure_images
from harness.images.engine import DockerEngine
from harness.images.enginespec import ContainerRequest
from harness.images.imageplan import ImageStatus
from harness.matrix.config import ImageSpec, load_matrix
from harness.paths import docker_dir

pytestmark = pytest.mark.docker

SESSION = uuid.uuid4().hex[:12]
TEST_LABELS = {"tfmh.test-session": SESSION}


def _spec(name: str, tf: str, package: str) -> ImageSpec:
    return ImageSpec(
        name=name, tf=tf, package=package, python="3.11", base={"kind": "bootstrap", "suite": "bookworm"}
    )


#: the two bootstrapped TF 2.x images exactly as matrix.yaml pins them (Keras 2 and Keras 3)
_MATRIX = load_matrix(Path(__file__).resolve().parents[2] / "matrix.yaml")
SPECS = [_MATRIX.images["tf2.15-py3.11"], _MATRIX.images["tf2.21-py3.11"]]


@pytest.fixture(scope="session")
def engine() -> Iterator[DockerEngine]:
    eng = DockerEngine.connect()
    yield eng
    eng.remove_containers(TEST_LABELS)


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return default_root()


@pytest.fixture(scope="session")
def built(engine: DockerEngine, cache_dir: Path) -> dict[str, ImageStatus]:
    lines: list[str] = []
    statuses = ensure_images(SPECS, engine, cache_dir, lines.append)
    assert all(s.available and s.tag and s.image_id for s in statuses.values()), statuses
    return statuses


def _run(engine: DockerEngine, image: str, code: str, **kw: object) -> object:
    req = ContainerRequest(image=image, command=["python3", "-c", code], labels=TEST_LABELS, **kw)  # type: ignore[arg-type]
    return engine.run_container(req)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_tf_imports_as_non_root_without_network(engine: DockerEngine, built: dict[str, ImageStatus], spec):
    code = (
        "import os, socket, tensorflow as tf\n"
        "print('TF', tf.__version__, 'UID', os.getuid())\n"
        "print('NET', sorted(os.listdir('/sys/class/net')))\n"
        "try:\n"
        "    socket.create_connection(('151.101.0.223', 443), timeout=3); print('ONLINE')\n"
        "except OSError as e:\n"
        "    print('OFFLINE', type(e).__name__)\n"
        "try:\n"
        "    open('/opt/venv/x', 'w'); print('ROOTFS-WRITABLE')\n"
        "except OSError:\n"
        "    print('ROOTFS-RO')\n"
    )
    out = _run(engine, built[spec.name].tag, code, timeout_s=300)
    assert out.exit_code == 0, out.logs
    assert f"TF {spec.tf} UID 1000" in out.logs
    assert "NET ['lo']" in out.logs
    assert "OFFLINE" in out.logs and "ONLINE" not in out.logs
    assert "ROOTFS-RO" in out.logs
    assert not out.timed_out and not out.oom_killed


def test_second_ensure_is_a_cache_hit(engine: DockerEngine, cache_dir: Path, built: dict[str, ImageStatus]):
    t0 = time.monotonic()
    again = ensure_images(SPECS, engine, cache_dir, lambda _line: None)
    elapsed = time.monotonic() - t0
    assert elapsed < 2.0
    for name, status in again.items():
        assert status.tag == built[name].tag and status.image_id == built[name].image_id
        assert not status.built


def test_changed_build_arg_gives_a_new_tag(
    engine: DockerEngine, cache_dir: Path, built: dict[str, ImageStatus]
):
    spec = SPECS[0]
    changed = ensure_images(
        [spec], engine, cache_dir, lambda _line: None, extra_build_args={"BUILD_NOTE": SESSION}
    )
    status = changed[spec.name]
    try:
        assert status.available and status.built
        assert status.tag != built[spec.name].tag
        assert status.tag.startswith(f"tfmh/{spec.name}:")
        assert engine.image_id(status.tag) == status.image_id
    finally:
        if status.tag:
            engine.remove_image(status.tag)


def test_broken_dockerfile_raises_build_error_naming_image(
    engine: DockerEngine, cache_dir: Path, built: dict[str, ImageStatus], tmp_path: Path
):
    ddir = tmp_path / "docker"
    ddir.mkdir()
    good = (docker_dir() / "bootstrap.Dockerfile").read_text()
    broken = good.replace("COPY --from=venv", f"RUN echo MARKER-{SESSION} && exit 7\nCOPY --from=venv", 1)
    (ddir / "bootstrap.Dockerfile").write_text(broken)
    spec = _spec("broken-img", "2.15.1", "six==1.17.0")
    with pytest.raises(BuildError) as info:
        ensure_images([spec], engine, cache_dir, lambda _line: None, docker_dir=ddir)
    msg = str(info.value)
    assert "broken-img" in msg
    assert f"MARKER-{SESSION}" in msg  # the log tail
    assert "returned a non-zero code: 7" in msg


def test_unresolvable_package_raises_build_error_naming_image(engine: DockerEngine, cache_dir: Path, built):
    spec = _spec("nowheel-img", "2.15.1", "tfmh-no-such-package==0.0.1")
    with pytest.raises(BuildError, match=r"(?s)nowheel-img.*tfmh-no-such-package==0\.0\.1"):
        ensure_images([spec], engine, cache_dir, lambda _line: None)


def test_timeout_kills_and_removes(engine: DockerEngine, built: dict[str, ImageStatus]):
    t0 = time.monotonic()
    out = _run(
        engine,
        built[SPECS[0].name].tag,
        "import time; print('sleeping', flush=True); time.sleep(120)",
        timeout_s=3,
    )
    assert out.timed_out and out.exit_code is None
    assert time.monotonic() - t0 < 60
    assert "sleeping" in out.logs
    assert engine.list_containers({"tfmh": "1", "tfmh.test-session": SESSION}) == []


def test_oom_is_detected(engine: DockerEngine, built: dict[str, ImageStatus]):
    code = "b = b'x' * (1024 << 20); print(len(b))"
    out = _run(engine, built[SPECS[0].name].tag, code, mem_limit="128m", timeout_s=120)
    assert out.oom_killed, out
    assert out.exit_code == 137 and not out.timed_out


def test_failed_command_reports_exit_code_and_logs(engine: DockerEngine, built: dict[str, ImageStatus]):
    out = _run(engine, built[SPECS[1].name].tag, "import sys; print('bye'); sys.exit(3)", timeout_s=120)
    assert out.exit_code == 3 and "bye" in out.logs and not out.oom_killed


def test_zz_no_containers_left_behind(engine: DockerEngine, built: dict[str, ImageStatus]):
    assert engine.list_containers({"tfmh": "1", "tfmh.test-session": SESSION}) == []
