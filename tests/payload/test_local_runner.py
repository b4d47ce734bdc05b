"""`harness run --runner local --python PATH`: the same payload in an existing TF interpreter, end to end."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import tf_pythons

from harness.results.resultdocs import validate_record
from harness.results.store import load_run

pytestmark = [pytest.mark.tf, pytest.mark.skipif(not tf_pythons(), reason="no TF interpreter given")]
ROOT = Path(__file__).resolve().parents[2]

MATRIX = textwrap.dedent(
    """\
    version: 1
    images:
      native: {tf: "2.15.1", package: tensorflow-cpu==2.15.1, python: "3.11", base: {kind: bootstrap}}
    workloads:
      mlp_loop: {params: {mode: [graph, eager]}}
      mlp_fit: {params: {input: tfdata}}
    defaults: {epochs: 1, train_samples: 640, eval_samples: 320, warmup_steps: 2, window_steps: 4}
    profiles:
      quick: {repeats: 1, timeout_s: 300, quiet: {wait_s: 0}}
    """
)


def test_local_runner_end_to_end(tmp_path: Path) -> None:
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX)
    python = tf_pythons()[0]
    results = tmp_path / "results"
    cmd = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--runner",
        "local",
        "--python",
        python,
        "--matrix",
        str(matrix),
        "--profile",
        "quick",
        "--results-dir",
        str(results),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run_dir,) = list(results.iterdir())
    run = load_run(run_dir)
    final = [r for r in run.records if not r.get("rerun")]  # contended attempts that were re-run aside
    assert len(final) == 3
    for record in run.records:
        assert validate_record(record) == []
        assert record["status"] == "ok"
        assert record["runner"]["kind"] == "local" and record["runner"]["python"] == python
        assert record["payload"]["runtime"]["payload_sha256"] == run.manifest["payload_sha256"]
    styles = {r["payload"]["api_style"] for r in run.records}
    assert styles == {"tf1-graph", "tf2-eager", "keras-fit"}
    assert json.loads((run_dir / "manifest.json").read_text())["runner"] == "local"
