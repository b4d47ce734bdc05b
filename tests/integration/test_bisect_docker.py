"""`harness bisect` against the real Docker engine over three real images (the `bisect-ci` profile: TF 2.11,
2.15, 2.21; mlp_fit numpy at CI size, 3 executions per side). Real timings at this size are noise, so the
test checks the document's shape and that every probe is recorded with its evidence, not a particular
answer. When the search over 2.11 ... 2.21 needs no probe of 2.15 (the bad end did not regress, or could
not be decided), a second search over 2.11 ... 2.15 probes it, so all three images run. The images are built
when missing (cached by content, shared with the other tests). `--quiet-threshold 1`: on a busy CI host every
execution would otherwise be contended and excluded, and no probe would have a ratio to record."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.results.bisectdoc import read_bisect
from harness.results.store import RunData, load_run

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent.parent
IMAGES = {"2.11": "tf2.11-py3.9", "2.15": "tf2.15-py3.11", "2.21": "tf2.21-py3.11"}


def _bisect(tmp_path: Path, good: str, bad: str) -> tuple[dict[str, Any], RunData, str, Path]:
    results, reports = tmp_path / f"results-{bad}", tmp_path / "reports"
    argv = ["bisect", "--profile", "bisect-ci", "--workload", "mlp_fit", "--good", good, "--bad", bad]
    argv += ["--threshold", "5", "--no-probe", "--quiet-threshold", "1", "--report"]
    argv += ["--results-dir", str(results), "--reports-dir", str(reports)]
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
    assert f"{doc['answer']['kind']}:" in proc.stdout and f"TF {good} (good)" in proc.stdout
    return doc, load_run(run_dir), proc.stdout, reports / run_dir.name / "index.html"


def _check(doc: dict[str, Any], run: RunData, page: Path) -> set[str]:
    """Every probe recorded with its executions; the answer consistent with the probes. The images run."""
    assert doc["probes"][0]["release"] == doc["bad"] and doc["probes"][0]["purpose"] == "verify bad end"
    for probe in doc["probes"]:
        assert probe["decision"] != "skipped", probe["reason"]
        assert 3 <= probe["rounds"] <= doc["max_repeats"] == 3
        assert len(probe["probed_repeats"]) == len(probe["good_repeats"]) == probe["rounds"]
        # every execution is used or counted as contended (steal can still mark one at threshold 1)
        assert probe["n_probed"] + probe["n_good"] + probe["n_contended"] == 2 * probe["rounds"]
        if probe["ratio"] is not None:
            assert probe["ratio_lo"] <= probe["ratio"] <= probe["ratio_hi"]
        else:
            assert "no ratio CI" in probe["reason"], probe["reason"]
        mine = [r for r in run.records if r["cell_id"] == probe["cell_id"] and not r.get("rerun")]
        assert sorted(r["repeat"] for r in mine) == probe["probed_repeats"]
        assert all(r["status"] == "ok" for r in mine), [r["reason"] for r in mine]
        assert all(r["payload"]["runtime"]["tf_version"].startswith(probe["release"]) for r in mine)
    answer = doc["answer"]
    decided = {p["release"]: p["decision"] for p in doc["probes"]}
    if answer["kind"] == "found":
        assert decided[answer["first_bad"]] == "regressed"
    elif answer["kind"] == "no regression":
        assert decided[doc["bad"]] == "not regressed" and len(doc["probes"]) == 1
    else:
        assert answer["undecided"] and all(decided[r] == "inconclusive" for r in answer["undecided"])
    html = page.read_text(encoding="utf-8")
    assert 'id="bisect-table"' in html and html.count('<tr><td class="n">') >= len(doc["probes"])
    images = {r["cell"]["image"] for r in run.records}
    assert images <= set(IMAGES.values())
    return images


def test_bisect_over_three_real_images(tmp_path: Path) -> None:
    doc, run, _, page = _bisect(tmp_path, "2.11", "2.21")
    assert [r["release"] for r in doc["releases"]] == ["2.11", "2.15", "2.21"]
    ran = _check(doc, run, page)
    if IMAGES["2.15"] not in ran:
        doc, run, _, page = _bisect(tmp_path, "2.11", "2.15")
        assert [r["release"] for r in doc["releases"]] == ["2.11", "2.15"]
        ran |= _check(doc, run, page)
    assert ran == set(IMAGES.values())
