"""The committed fixture runs are what the harness itself writes (make_fixtures.py drives the real session and
store with a fake backend), byte for byte, and they have the shapes the report tests rely on."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.results.resultdocs import validate_record
from harness.results.store import RunData, load_run
from tests.fixtures import make_fixtures, make_public_record_fixture

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


def test_committed_public_record_fixture_is_what_its_generator_writes(tmp_path: Path) -> None:
    make_public_record_fixture.record(tmp_path / "public_record")
    fresh, committed = _files(tmp_path / "public_record"), _files(make_public_record_fixture.RUNS_DIR)
    assert sorted(fresh) == sorted(committed)
    for rel, text in fresh.items():
        assert text == committed[rel], f"{rel} drifted: regenerate with make_public_record_fixture.py"


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


def _ok_payloads(run: RunData) -> list[dict]:
    return [r["payload"] for r in run.records if r["status"] == "ok"]


def test_fixture_payloads_have_the_windows_the_payload_would_time(current_run: RunData) -> None:
    """warm-up 50, windows of 100, a window never spans epochs (payload timing.WindowTimer): mlp's 2 epochs
    of 470 steps give 4 + 4 windows, cnn's 2 epochs of 235 steps 1 + 2 (the second epoch's first window
    opens at its first step)."""
    expected = {"mlp_fit": 8, "mlp_loop": 8, "cnn_fit": 3}
    for doc in _ok_payloads(current_run):
        steps = doc["steps"]
        assert len(steps["step_time_s"]) == expected[doc["spec"]["workload"]], doc["cell_id"]
        assert len(steps["cpu_time_s"]) == len(steps["step_time_s"])  # the payload always times CPU too
        assert steps["total_steps"] == steps["steps_per_epoch"] * doc["spec"]["epochs"]
        assert len(doc["epochs"]["epoch_time_s"]) == doc["spec"]["epochs"]


def test_fixture_records_are_physically_possible(current_run: RunData) -> None:
    """The container ran at least as long as the phases the payload timed inside it, and the payload's
    timestamps have the payload's own format (resultio.utc_now: milliseconds, +00:00)."""
    import re

    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")
    for rec in current_run.records:
        doc = rec.get("payload")
        if not doc or rec["status"] != "ok":
            continue
        phases = {k: v for k, v in doc["phases_s"].items() if v is not None and k != "fit_total"}
        assert rec["wall_s"] >= sum(phases.values()), rec["cell_id"]
        assert stamp.match(doc["started_at"]) and stamp.match(doc["finished_at"])
        assert rec["log_tail"].rstrip().endswith(f"throughput={doc['throughput_samples_per_s']}")
