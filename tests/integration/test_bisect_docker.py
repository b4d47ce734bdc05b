"""`harness bisect` against the real Docker engine over three real images (the `bisect-ci` profile: TF 2.11,
2.15, 2.21; mlp_fit numpy at CI size, 3 executions per side). Real timings at this size are noise, so the
test checks the document's shape and that every probe is recorded with its evidence, not a particular
answer; the images it probes are built when missing (cached by content, shared with the other tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.results.bisectdoc import read_bisect
from harness.results.store import load_run

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent.parent


def test_bisect_over_three_real_images(tmp_path: Path) -> None:
    results, reports = tmp_path / "results", tmp_path / "reports"
    argv = ["bisect", "--profile", "bisect-ci", "--workload", "mlp_fit", "--good", "2.11", "--bad", "2.21"]
    argv += ["--threshold", "5", "--no-probe", "--report", "--results-dir", str(results)]
    argv += ["--reports-dir", str(reports)]
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), out[-5000:]  # 0: an answer; 1: inconclusive (both are answers)
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]
    doc = read_bisect(run_dir)
    assert doc is not None and doc["answer"] is not None, out[-3000:]
    assert [r["release"] for r in doc["releases"]] == ["2.11", "2.15", "2.21"]
    assert doc["probes"][0]["release"] == "2.21" and doc["probes"][0]["purpose"] == "verify bad end"
    run = load_run(run_dir)
    for probe in doc["probes"]:
        assert probe["decision"] != "skipped", probe["reason"]
        assert 3 <= probe["rounds"] <= doc["max_repeats"] == 3
        # on a busy host every execution may be contended (excluded): then there is no ratio, and it says so
        assert probe["ratio"] is not None or "no ratio CI" in probe["reason"], probe["reason"]
        assert len(probe["probed_repeats"]) == len(probe["good_repeats"]) == probe["rounds"]
        mine = [r for r in run.records if r["cell_id"] == probe["cell_id"] and not r.get("rerun")]
        assert sorted(r["repeat"] for r in mine) == probe["probed_repeats"]
        assert all(r["status"] == "ok" for r in mine), [r["reason"] for r in mine]
        assert all(r["payload"]["runtime"]["tf_version"].startswith(probe["release"]) for r in mine)
    answer = doc["answer"]
    decided = {p["release"]: p["decision"] for p in doc["probes"]}
    if answer["kind"] == "found":
        assert decided[answer["first_bad"]] == "regressed"
    elif answer["kind"] == "no regression":
        assert decided["2.21"] == "not regressed" and len(doc["probes"]) == 1
    else:
        assert answer["undecided"] and all(decided[r] == "inconclusive" for r in answer["undecided"])
    assert {r["cell"]["image"] for r in run.records} <= {"tf2.11-py3.9", "tf2.15-py3.11", "tf2.21-py3.11"}
    assert f"{answer['kind']}:" in proc.stdout and "TF 2.11 (good)" in proc.stdout
    html = (reports / run_dir.name / "index.html").read_text(encoding="utf-8")
    assert 'id="bisect-table"' in html and html.count('<tr><td class="n">') >= len(doc["probes"])
