"""The committed fixture runs are what the harness itself writes (make_fixtures.py drives the real session and
store with a fake backend), byte for byte, and they have the shapes the report tests rely on."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.results.resultdocs import validate_record
from harness.results.store import RunData, load_run
from tests.fixtures import make_fixtures

RUNS = Path(__file__).resolve().parents[1] / "fixtures" / "runs"


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_committed_fixtures_are_what_the_generator_writes(tmp_path: Path) -> None:
    """Regenerating gives the committed files exactly (no field is normalised by this test: the generator
    pins the wall clock, host facts, command line and payload checksum itself)."""
    make_fixtures.main(tmp_path / "runs")
    fresh, committed = _files(tmp_path / "runs"), _files(RUNS)
    assert sorted(fresh) == sorted(committed)
    for rel, text in fresh.items():
        assert text == committed[rel], f"{rel} drifted: regenerate with tests/fixtures/make_fixtures.py"


def test_fixture_records_are_valid_current_records() -> None:
    for run_dir in sorted(RUNS.iterdir()):
        run = load_run(run_dir)
        for rec in run.records:
            assert rec["schema_version"] == 2 and validate_record(rec) == [], rec["cell_id"]


def test_one_record_per_unavailable_cell_with_the_planners_reason(current_run: RunData) -> None:
    unavailable = [r for r in current_run.records if r["status"] == "unavailable"]
    assert {r["cell"]["image"] for r in unavailable} == {"tf1.15-gpu"}
    assert Counter(r["cell_id"] for r in unavailable) == Counter(
        {c: 1 for c in {r["cell_id"] for r in unavailable}}
    )
    assert all(r["repeat"] == 0 for r in unavailable)
    reasons = {r["cell_id"].split("/")[1]: r["reason"] for r in unavailable}
    for mode in ("function", "eager"):
        assert reasons[f"mlp_loop-{mode}"].startswith(f"unsupported: mode '{mode}' needs TF 2.x")
    for key in ("mlp_loop-graph", "mlp_fit-numpy", "mlp_fit-tfdata", "cnn_fit-numpy"):
        assert reasons[key] == "registry unreachable: registry-1.docker.io (no DNS)"
    manifest_reasons = {c["cell_id"]: c["reason"] for c in current_run.manifest["cells"]}
    assert all(manifest_reasons[r["cell_id"]] == r["reason"] for r in unavailable)


def test_fixture_shape(current_run: RunData, earlier_run: RunData) -> None:
    statuses = Counter(r["status"] for r in current_run.records if not r.get("rerun"))
    assert statuses == {"ok": 36, "unavailable": 6, "failed": 3, "timeout": 3}
    (kept,) = [r for r in current_run.records if r.get("rerun")]
    assert kept["contention"]["contended"] and kept["attempt"] == 0
    (final,) = [
        r
        for r in current_run.records
        if (r["cell_id"], r["repeat"]) == (kept["cell_id"], kept["repeat"]) and not r.get("rerun")
    ]
    assert final["attempt"] == 1 and not final["contention"]["contended"]
    assert [p["label"] for p in current_run.probes] == [
        "start",
        "after round 1",
        "after round 2",
        "after round 3",
    ]
    assert {r["status"] for r in earlier_run.records} == {"ok"}
    assert {r["cell_id"] for r in earlier_run.records} < {r["cell_id"] for r in current_run.records}
