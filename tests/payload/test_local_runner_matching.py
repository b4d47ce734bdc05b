"""`harness run --runner local` with two real TF interpreters and a matrix of three images: each cell runs
in the interpreter that matches its image (TF minor and Python minor); the third image's cells are
unavailable with the reason, and records name the interpreter and what it reported."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import tf_pythons

from harness.execution.interpreters import probe_interpreter
from harness.results.resultdocs import validate_record
from harness.results.store import load_run

pytestmark = [pytest.mark.tf, pytest.mark.skipif(len(tf_pythons()) < 2, reason="needs two TF interpreters")]
ROOT = Path(__file__).resolve().parents[2]

MATRIX = textwrap.dedent(
    """\
    version: 1
    baseline: {first}
    images:
      tf1.15-py3.6-official:
        tf: "1.15.5"
        package: tensorflow-gpu==1.15.5
        python: "3.6"
        cuda: "10.0"
        cudnn: "7.6"
        base: {{kind: registry, image: "tensorflow/tensorflow:1.15.5-gpu-py3"}}
        devices: [cpu]
    {images}
    workloads:
      mlp_fit: {{params: {{input: numpy}}}}
    defaults: {{epochs: 1, train_samples: 640, eval_samples: 320, warmup_steps: 2, window_steps: 4}}
    profiles:
      quick: {{repeats: 1, timeout_s: 600, quiet: {{wait_s: 0, reruns: 0}}, probe: false}}
    """
)


def test_each_cell_runs_in_the_interpreter_matching_its_image(tmp_path: Path) -> None:
    infos = [probe_interpreter(p) for p in tf_pythons()[:2]]
    assert all(i.tf for i in infos), infos
    assert infos[0].tf_minor != infos[1].tf_minor, "give two different TF versions"
    names = [f"tf{i.tf_minor}-py{i.python_minor}" for i in infos]
    images = "\n".join(
        f'  {n}: {{tf: "{i.tf}", package: tensorflow-cpu=={i.tf}, python: "{i.python_minor}", '
        f"base: {{kind: bootstrap}}, allow_untested: true}}"
        for n, i in zip(names, infos, strict=True)
    )
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX.format(first=names[0], images=images), encoding="utf-8")
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "harness", "run", "--runner", "local", "--matrix", str(matrix)]
    cmd += ["--profile", "quick", "--results-dir", str(results)]
    for info in reversed(infos):  # order does not matter: each image takes the one that matches
        cmd += ["--python", info.path]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "\x1b" not in proc.stdout  # not a terminal: plain lines
    (run_dir,) = list(results.iterdir())
    run = load_run(run_dir)
    by_image = {r["cell"]["image"]: r for r in run.records}
    assert set(by_image) == {*names, "tf1.15-py3.6-official"}
    for name, info in zip(names, infos, strict=True):
        record = by_image[name]
        assert validate_record(record) == []
        assert record["status"] == "ok", record["reason"]
        assert record["runner"]["kind"] == "local" and record["runner"]["python"] == info.path
        assert record["runner"]["versions"] == info.versions()
        assert record["payload"]["runtime"]["tf_version"] == info.tf
    third = by_image["tf1.15-py3.6-official"]
    assert third["status"] == "unavailable"
    assert third["reason"].startswith("no local interpreter has TF 1.15 on Python 3.6")
