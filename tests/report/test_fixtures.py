"""The committed fixtures are what make_fixtures.py produces, and they are valid cell records."""

from __future__ import annotations

from pathlib import Path

import make_fixtures  # type: ignore[import-not-found]

from harness.resultdocs import RECORD_SCHEMA_VERSION, validate, validate_record
from harness.store import load_run

RUNS = Path(__file__).resolve().parents[1] / "fixtures" / "runs"


def test_committed_fixtures_are_up_to_date(tmp_path: Path) -> None:
    make_fixtures.main(tmp_path)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.json"))
    committed = sorted(p.relative_to(RUNS) for p in RUNS.rglob("*.json"))
    assert fresh == committed
    for rel in fresh:
        assert (tmp_path / rel).read_text() == (RUNS / rel).read_text(), rel


def test_fixture_records_are_valid() -> None:
    for run_dir in sorted(RUNS.iterdir()):
        run = load_run(run_dir)
        for rec in run.records:
            assert validate(rec, f"cell-record.v{RECORD_SCHEMA_VERSION}") == [], rec["cell_id"]
            try:
                problems = validate_record(rec)
            except FileNotFoundError:  # payload schema not written yet
                continue
            assert problems == [], (rec["cell_id"], problems[:3])


def test_fixture_shape(current_run) -> None:
    statuses = {r["status"] for r in current_run.records}
    assert statuses == {"ok", "unavailable", "failed", "timeout"}
    unavailable = [r for r in current_run.records if r["status"] == "unavailable"]
    assert {r["cell"]["image"] for r in unavailable} == {"tf1.15-gpu"}
    assert all(r["reason"].startswith("registry unreachable: ") for r in unavailable)
