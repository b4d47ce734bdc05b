"""The Keras-2-on-TF-2.21 image (`keras: legacy`): built offline like every image (the tf_keras wheel comes
from the host wheelhouse, installed without dependencies), and tf.keras is Keras 2 when the image runs alone
-- no harness environment -- as the payload's provenance records it (opt-in: TFMH_DOCKER_TESTS=1)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cachedirs import default_root
from harness.images.build import ensure_images
from harness.images.engine import DockerEngine
from harness.images.enginespec import ContainerRequest, Mount
from harness.matrix.config import load_matrix
from harness.paths import payload_dir

pytestmark = pytest.mark.docker

SESSION = uuid.uuid4().hex[:12]
TEST_LABELS = {"tfmh.test-session": SESSION}
_MATRIX = load_matrix(Path(__file__).resolve().parents[2] / "matrix.yaml")
SPEC = _MATRIX.images["tf2.21-py3.11-keras2"]
PLAIN = _MATRIX.images["tf2.21-py3.11"]
#: what the payload's provenance says about the Keras that ran, from inside the image
PROBE = (
    "import json, sys; sys.path.insert(0, '/opt/tfmh/payload')\n"
    "import tensorflow as tf, provenance\n"
    "k = provenance.keras_version(tf)\n"
    "print('TFMH ' + json.dumps({'tf': tf.__version__, 'package': provenance.keras_package(tf), "
    "'version': k, 'major': provenance.keras_major(k), "
    "'dense': tf.keras.layers.Dense.__module__}))\n"
)


@pytest.fixture(scope="module")
def engine() -> Iterator[DockerEngine]:
    eng = DockerEngine.connect()
    yield eng
    eng.remove_containers(TEST_LABELS)


def _report(engine: DockerEngine, tag: str) -> dict[str, object]:
    mount = Mount(str(payload_dir()), "/opt/tfmh/payload", read_only=True)
    req = ContainerRequest(
        image=tag, command=["python3", "-c", PROBE], mounts=[mount], labels=TEST_LABELS, timeout_s=300
    )
    out = engine.run_container(req)
    assert out.exit_code == 0, out.logs
    line = next(x for x in out.logs.splitlines() if x.startswith("TFMH "))
    doc: dict[str, object] = json.loads(line[len("TFMH ") :])
    return doc


def test_keras2_image_runs_keras_2_on_tf_2_21(engine: DockerEngine) -> None:
    lines: list[str] = []
    statuses = ensure_images([SPEC, PLAIN], engine, default_root(), lines.append)
    legacy, plain = statuses[SPEC.name], statuses[PLAIN.name]
    assert legacy.available and legacy.tag and plain.available and plain.tag, statuses
    assert legacy.tag.split(":")[1] != plain.tag.split(":")[1]  # the option is part of the content address
    got = _report(engine, legacy.tag)
    assert got["tf"] == SPEC.tf
    assert (got["package"], got["major"]) == ("tf_keras", 2), got
    assert str(got["version"]).startswith(SPEC.tf_minor + "."), got
    assert str(got["dense"]).startswith("tf_keras."), got
    # the same TF runtime without the option: Keras 3
    other = _report(engine, plain.tag)
    assert (other["tf"], other["package"], other["major"]) == (SPEC.tf, "keras", 3), other
