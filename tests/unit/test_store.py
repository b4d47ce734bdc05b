"""Results store: atomic writes, schema versions (upgrade path, newer refused), run resolution, merge."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.analysis import stored as analysis_files
from harness.atomicfile import write_json
from harness.errors import ResultError
from harness.results import resultdocs
from harness.results.merge import merge_runs
from harness.results.resultdocs import upgrade_record, validate_record
from harness.results.store import RunStore, load_run, resolve_run

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "runs"
#: cell records as a schema_version 1 harness wrote them (for the upgrade path)
LEGACY_V1 = FIXTURES.parent / "legacy_v1"


def _fixture_run(tmp_path: Path) -> Path:
    src = sorted(FIXTURES.iterdir())[-1]
    dst = tmp_path / "results" / src.name
    shutil.copytree(src, dst)
    return dst


def test_fixture_records_validate_against_the_schemas() -> None:
    """The fixture runs are what the runner writes today: current-version records, valid as written."""
    from harness.results.resultdocs import RECORD_SCHEMA_VERSION, validate

    paths = sorted(FIXTURES.glob("*/cells/*.json"))
    assert paths
    for path in paths:
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["schema_version"] == RECORD_SCHEMA_VERSION, path
        assert validate(doc, f"cell-record.v{RECORD_SCHEMA_VERSION}") == [], path
        assert validate_record(doc) == [], path


def test_v1_records_validate_and_upgrade() -> None:
    """Records written by schema_version 1 harnesses (ok, unavailable, failed, timeout): valid as written,
    and valid again once upgraded."""
    from harness.results.resultdocs import upgrade_record, validate

    paths = sorted(LEGACY_V1.glob("*.json"))
    assert {json.loads(p.read_text(encoding="utf-8"))["status"] for p in paths} == {
        "ok",
        "unavailable",
        "failed",
        "timeout",
    }
    for path in paths:
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["schema_version"] == 1 and validate(doc, "cell-record.v1") == [], path
        if isinstance(doc.get("payload"), dict):
            assert validate(doc["payload"], "payload-result.v1") == [], path
        upgraded = upgrade_record(doc, path)
        assert upgraded["schema_version"] == 2 and upgraded["attempt"] == 0
        assert validate_record(upgraded) == [], path


def test_fixture_manifests_validate() -> None:
    from harness.results.resultdocs import validate

    for path in sorted(FIXTURES.glob("*/manifest.json")):
        assert validate(json.loads(path.read_text(encoding="utf-8")), "run-manifest.v1") == [], path


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "doc.json"
    write_json(target, {"a": 1})
    with pytest.raises(ValueError):
        write_json(target, {"a": float("nan")})  # not JSON: refused before replace
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["doc.json"]


def test_newer_schema_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ResultError, match="schema_version 99 is newer than this harness understands"):
        upgrade_record({"schema_version": 99}, "x.json")


def test_missing_schema_version_is_refused() -> None:
    with pytest.raises(ResultError, match="schema_version: expected an integer"):
        upgrade_record({}, "x.json")


def test_upgrade_path_runs_registered_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resultdocs, "RECORD_SCHEMA_VERSION", 2)
    monkeypatch.setitem(resultdocs._RECORD_UPGRADES, 1, lambda d: {**d, "schema_version": 2, "new": True})
    assert upgrade_record({"schema_version": 1}) == {"schema_version": 2, "new": True}


def test_invalid_record_is_not_stored(tmp_path: Path) -> None:
    with pytest.raises(ResultError, match="refusing to store an invalid record"):
        RunStore(tmp_path).write_record({"schema_version": 1, "cell_id": "x", "repeat": 0})
    assert not (tmp_path / "cells").exists()


def test_resolve_run_by_id_path_and_latest(tmp_path: Path) -> None:
    run = _fixture_run(tmp_path)
    results = run.parent
    assert resolve_run(results, run.name) == run
    assert resolve_run(results, str(run)) == run
    assert resolve_run(results, "latest") == run
    with pytest.raises(ResultError, match="no such run folder"):
        resolve_run(results, "nope")


def _split(run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two shard-like runs holding disjoint halves of the fixture run's records."""
    a, b = tmp_path / "shards" / "a", tmp_path / "shards" / "b"
    for i, dst in enumerate((a, b)):
        shutil.copytree(run, dst)
        for j, rec in enumerate(sorted((dst / "cells").glob("*.json"))):
            if j % 2 != i:
                rec.unlink()
    return a, b


def test_merge_combines_disjoint_shards(tmp_path: Path) -> None:
    run = _fixture_run(tmp_path)
    a, b = _split(run, tmp_path)
    out = merge_runs([a, b], tmp_path / "merged", "m1", finish=analysis_files.refresh_folder)
    merged = load_run(out)
    original = load_run(run)
    key = lambda r: (r["cell_id"], r["repeat"])  # noqa: E731
    assert sorted(map(key, merged.records)) == sorted(map(key, original.records))
    assert {r["run_id"] for r in merged.records} == {"m1"}
    assert len(merged.manifest["merged_from"]) == 2
    stored = analysis_files.read_stored(out)  # analysed when the merge finished, for the merged records
    assert stored is not None and stored.inputs == analysis_files.inputs_of(merged) and stored.run_id == "m1"


def test_merge_refuses_overlap_and_writes_nothing(tmp_path: Path) -> None:
    run = _fixture_run(tmp_path)
    with pytest.raises(ResultError, match="merge combines disjoint shards"):
        merge_runs([run, run], tmp_path / "merged", "m2")
    assert not (tmp_path / "merged" / "m2").exists()


def test_merge_refuses_runs_made_with_other_param_values(tmp_path: Path) -> None:
    run = _fixture_run(tmp_path)
    a, b = _split(run, tmp_path)
    manifest = json.loads((b / "manifest.json").read_text(encoding="utf-8"))
    manifest["params"] = {"epochs": 1}
    (b / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ResultError, match="different matrices/profiles/--param values"):
        merge_runs([a, b], tmp_path / "merged", "m3")
    assert not (tmp_path / "merged" / "m3").exists()
