"""The timeline's two kinds of image for real: a Debian bullseye / Python 3.9 image of an old release
(tf2.11-py3.9: its wheels resolved as of its upload, Keras 2) and a bookworm / Python 3.11 one
(tf2.15-py3.11), each built as matrix.yaml declares it and running every ci-size workload; then
`harness images` lists them with their last use and `harness images prune --dry-run` keeps them.

Opt-in (TFMH_DOCKER_TESTS=1); the normal cache is reused, so a warm cache makes it fast. Prune is only ever
run with --dry-run here: the engine may be shared, and a real prune would remove other people's images.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.cachedirs import default_root
from harness.images.asof import POLICY
from harness.images.wheelhouse import lock_key, lock_path, platform_tags
from harness.matrix.config import load_matrix
from harness.matrix.testedconfigs import SUITE_GLIBC_MINOR
from harness.results.resultdocs import validate_record
from harness.results.store import load_run

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent.parent
IMAGES = {"tf2.11-py3.9": "2.11", "tf2.15-py3.11": "2.15"}


def _matrix(tmp_path: Path) -> Path:
    """The two images exactly as the repo's matrix declares them, and the ci profile's sizes."""
    repo = load_matrix(ROOT / "matrix.yaml")
    lines = []
    for name in IMAGES:
        spec = repo.images[name]
        lines.append(
            f'  {name}: {{tf: "{spec.tf}", package: {spec.package}, python: "{spec.python}", '
            f"base: {{kind: bootstrap, suite: {spec.base.suite}}}}}"  # type: ignore[union-attr]
        )
    ci = repo.profiles["ci"].params
    text = textwrap.dedent(
        """\
        version: 1
        images:
        {images}
        workloads:
          mlp_fit: {{params: {{input: [numpy, tfdata]}}}}
          mlp_loop: {{params: {{mode: [graph, function, eager], epochs: 1}}}}
          cnn_fit: {{params: {{input: [numpy, tfdata], epochs: 2, train_samples: 20000}}}}
        profiles:
          timeline-ci:
            devices: [cpu]
            repeats: 1
            timeout_s: 300
            probe: false
            quiet: {{wait_s: 0, reruns: 0}}
            params: {params}
        """
    ).format(images="\n".join(lines), params=json.dumps(ci))
    path = tmp_path / "matrix.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=ROOT, capture_output=True, text=True, timeout=3000
    )


def test_bullseye_and_bookworm_images_run_the_ci_workloads(tmp_path: Path) -> None:
    matrix = _matrix(tmp_path)
    results = tmp_path / "results"
    run = _cli("run", "--matrix", str(matrix), "--profile", "timeline-ci", "--results-dir", str(results))
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]
    records = load_run(run_dir).records
    tags = set()
    for image, tf in IMAGES.items():
        mine = [r for r in records if r["cell"]["image"] == image]
        assert len(mine) == 7, image  # every ci workload variant
        assert all(r["status"] == "ok" for r in mine), [r["reason"] for r in mine if r["status"] != "ok"]
        assert all(validate_record(r) == [] for r in mine)
        assert all(r["payload"]["runtime"]["tf_version"].startswith(tf) for r in mine)
        tags |= {r["runner"]["image_tag"] for r in mine}

    # the old release's lock: resolved as of its upload, and what it resolved to imports (numpy 1.x)
    reqs = ["tensorflow-cpu==2.11.1"]
    key = lock_key(reqs, "3.9", platform_tags(SUITE_GLIBC_MINOR["bullseye"]), POLICY)
    lock = json.loads(lock_path(default_root(), "3.9", key).read_text(encoding="utf-8"))
    assert lock["basis"]["uploaded_prior_to"].startswith("2023-03-20T")
    numpy = next(w for w in lock["wheels"] if w["name"] == "numpy")
    assert numpy["version"].startswith("1."), numpy

    listed = _cli("images")
    assert listed.returncode == 0, listed.stderr
    for tag in tags:
        row = next(line for line in listed.stdout.splitlines() if tag.split(":")[1][:12] in line)
        assert "never" not in row, row  # the run above used it
    pruned = _cli("images", "prune", "--dry-run", "--matrix", str(matrix))
    assert pruned.returncode == 0, pruned.stderr
    assert not any(tag in pruned.stdout for tag in tags), pruned.stdout
    assert "would remove" in pruned.stdout
