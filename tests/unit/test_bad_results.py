"""Malformed result folders and hostile CLI input: each gets one clear message naming the file and the
field, exit code 2, no traceback, and nothing is written (report, compare, merge)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.errors import ConfigError, ResultError
from harness.results import merge as merge_mod
from harness.results import resultdocs
from harness.results.merge import merge_runs
from harness.results.resultdocs import read_json
from harness.results.store import RunStore, load_run
from harness.safenames import checked_name

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "runs"
OLD, NEW = sorted(p.name for p in FIXTURES.iterdir())
CELL = "tf2.15-py3.11-cpu_mlp_fit-numpy_bs32__r0.json"

Mutation = Callable[[Path], None]


@pytest.fixture
def results(tmp_path: Path) -> Path:
    out = tmp_path / "results"
    shutil.copytree(FIXTURES, out)
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _raw(rel: str, data: bytes) -> Mutation:
    def apply(results: Path) -> None:
        path = results / NEW / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return apply


def _edit(rel: str, change: Callable[[dict[str, Any]], Any]) -> Mutation:
    def apply(results: Path) -> None:
        path = results / NEW / rel
        doc = json.loads(path.read_text(encoding="utf-8"))
        out = change(doc)
        path.write_text(json.dumps(doc if out is None else out), encoding="utf-8")

    return apply


def _set(rel: str, dotted: str, value: Any) -> Mutation:
    def change(doc: dict[str, Any]) -> None:
        *head, last = dotted.split(".")
        node: Any = doc
        for part in head:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return _edit(rel, change)


def _drop(rel: str, key: str) -> Mutation:
    return _edit(rel, lambda doc: doc.pop(key) and None)


def _probe(doc: dict[str, Any]) -> Mutation:
    return _raw("probes/000.json", json.dumps(doc).encode())


GOOD_PROBE = {
    "kind": "tfmh.probe-record",
    "schema_version": 1,
    "run_id": NEW,
    "index": 0,
    "label": "start",
    "at": "2026-11-26T14:20:00Z",
    "image": "tf2.15-py3.11",
    "status": "ok",
    "reason": None,
    "runner": {"kind": "docker"},
    "telemetry": None,
    "result": {"matmul_gflops": 10.0, "loop_mops": 50.0},
}

REC = f"cells/{CELL}"
MAN = "manifest.json"
REPORT = ["report", NEW]
COMPARE = ["compare", OLD, NEW]
MERGE = ["merge", NEW, "--run-id", "merged-x"]

# (id, mutation of the NEW fixture run, command, substrings of the message)
CASES: list[tuple[str, Mutation, list[str], list[str]]] = [
    ("record-not-json", _raw(REC, b"{"), REPORT, [CELL, "not valid JSON"]),
    ("record-empty", _raw(REC, b""), COMPARE, [CELL, "not valid JSON"]),
    ("record-list", _raw(REC, b"[1, 2]"), REPORT, [CELL, "expected a cell record", "got list"]),
    ("record-nan", _set(REC, "wall_s", float("nan")), REPORT, [CELL, "NaN is not a JSON number"]),
    ("record-infinity", _set(REC, "payload.steps.step_time_s.0", float("inf")), COMPARE, [CELL, "Infinity"]),
    ("record-duplicate-key", _raw(REC, b'{"a": 1, "a": 2}'), REPORT, [CELL, "duplicate key 'a'"]),
    ("record-latin-1", _raw(REC, '{"log_tail": "caf\xe9"}'.encode("latin-1")), REPORT, [CELL, "not UTF-8"]),
    ("record-deep-1e5", _raw(REC, b"[" * 100_000 + b"]" * 100_000), REPORT, [CELL, "nested"]),
    (
        "record-deep-100",
        _set(REC, "cell.params.x", json.loads("[" * 100 + "]" * 100)),
        MERGE,
        [CELL, "nested deeper than 64"],
    ),
    ("record-newer", _set(REC, "schema_version", 99), REPORT, [CELL, "schema_version 99 is newer"]),
    (
        "record-version-string",
        _set(REC, "schema_version", "1"),
        REPORT,
        [CELL, "schema_version: expected an integer"],
    ),
    ("record-version-bool", _set(REC, "schema_version", True), COMPARE, [CELL, "expected an integer"]),
    ("record-version-missing", _drop(REC, "schema_version"), REPORT, [CELL, "expected an integer, got None"]),
    ("record-status", _set(REC, "status", "great"), REPORT, [CELL, "invalid cell record", "status"]),
    ("record-repeat-negative", _set(REC, "repeat", -1), COMPARE, [CELL, "repeat", "minimum"]),
    ("record-repeat-string", _set(REC, "repeat", "0"), REPORT, [CELL, "repeat", "not of type 'integer'"]),
    ("record-no-cell-id", _drop(REC, "cell_id"), MERGE, [CELL, "'cell_id' is a required property"]),
    ("record-kind", _set(REC, "kind", "tfmh.other"), REPORT, [CELL, "kind"]),
    ("record-device", _set(REC, "cell.device", "tpu"), REPORT, [CELL, "cell/device"]),
    ("record-wall-string", _set(REC, "wall_s", "fast"), COMPARE, [CELL, "wall_s"]),
    ("record-extra-key", _set(REC, "verdict", "faster"), REPORT, [CELL, "verdict"]),
    (
        "payload-newer",
        _set(REC, "payload.schema_version", 99),
        REPORT,
        [CELL, "payload result schema_version 99 is newer"],
    ),
    (
        "payload-steps-text",
        _set(REC, "payload.steps.step_time_s.0", "slow"),
        COMPARE,
        [CELL, "payload/steps/step_time_s/0"],
    ),
    ("payload-status", _set(REC, "payload.status", "meh"), REPORT, [CELL, "payload/status"]),
    ("payload-not-object", _set(REC, "payload", [1]), REPORT, [CELL, "payload"]),
    (
        "record-twice",
        lambda r: shutil.copy(r / NEW / REC, r / NEW / "cells" / "copy.json"),
        REPORT,
        ["is recorded twice", CELL],
    ),
    ("manifest-not-json", _raw(MAN, b"not json"), REPORT, [MAN, "not valid JSON"]),
    ("manifest-list", _raw(MAN, b"[]"), COMPARE, [MAN, "expected a run manifest"]),
    ("manifest-newer", _set(MAN, "schema_version", 2), REPORT, [MAN, "manifest schema_version 2 is newer"]),
    ("manifest-no-run-id", _drop(MAN, "run_id"), REPORT, [MAN, "'run_id' is a required property"]),
    ("manifest-sha", _set(MAN, "matrix_sha256", "xyz"), MERGE, [MAN, "matrix_sha256"]),
    ("manifest-repeats-zero", _set(MAN, "repeats", 0), REPORT, [MAN, "repeats"]),
    ("manifest-cells-string", _set(MAN, "cells", "all"), COMPARE, [MAN, "cells"]),
    ("manifest-no-host", _drop(MAN, "host"), MERGE, [MAN, "'host' is a required property"]),
    ("manifest-started-number", _set(MAN, "started_at", 5), MERGE, [MAN, "started_at"]),
    ("probe-garbage", _raw("probes/000.json", b"\x00\x01"), REPORT, ["000.json", "not valid JSON"]),
    (
        "probe-other-kind",
        _probe({**GOOD_PROBE, "kind": "tfmh.cell-record"}),
        REPORT,
        ["000.json", "invalid probe record", "kind"],
    ),
    (
        "probe-newer",
        _probe({**GOOD_PROBE, "schema_version": 5}),
        REPORT,
        ["000.json", "schema_version 5 is newer"],
    ),
    (
        "probe-rate-text",
        _probe({**GOOD_PROBE, "result": {"matmul_gflops": "fast"}}),
        COMPARE,
        ["000.json", "result/matmul_gflops"],
    ),
    ("probe-index-negative", _probe({**GOOD_PROBE, "index": -1}), MERGE, ["000.json", "index"]),
    ("probe-not-object", _raw("probes/000.json", b"3"), MERGE, ["000.json", "expected a probe record"]),
]


def _no_writes(results: Path, before: dict[str, bytes], tmp_path: Path) -> None:
    assert _tree(results) == before
    assert not (tmp_path / "reports").exists()
    assert sorted(p.name for p in results.iterdir()) == [OLD, NEW]


@pytest.mark.parametrize(("mutate", "command", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_result_document(
    results: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mutate: Mutation,
    command: list[str],
    expected: list[str],
) -> None:
    mutate(results)
    before = _tree(results)
    dirs = ["--results-dir", str(results), "--reports-dir", str(tmp_path / "reports")]
    code = main([*command, *dirs])
    out, err = capsys.readouterr()
    assert code == 2, out
    assert "Traceback" not in err + out and err.startswith("error: ")
    flat = " ".join(err.split())
    for fragment in expected:
        assert fragment in flat, f"{fragment!r} not in:\n{err}"
    _no_writes(results, before, tmp_path)


# (id, command, substrings) — command-line input that must be refused
CLI_CASES: list[tuple[str, list[str], list[str]]] = [
    ("merge-id-parent", ["merge", NEW, "--run-id", "../x"], ["--run-id '../x'", "one folder name"]),
    ("merge-id-absolute", ["merge", NEW, "--run-id", "/tmp/tfmh-evil"], ["--run-id '/tmp/tfmh-evil'"]),
    ("merge-id-nested", ["merge", NEW, "--run-id", "a/b"], ["--run-id 'a/b'"]),
    ("merge-id-hidden", ["merge", NEW, "--run-id", ".hidden"], ["--run-id '.hidden'"]),
    ("merge-id-dots", ["merge", NEW, "--run-id", ".."], ["--run-id '..'"]),
    ("merge-id-empty", ["merge", NEW, "--run-id", ""], ["--run-id ''"]),
    ("merge-id-markup", ["merge", NEW, "--run-id", "[/bold]"], ["--run-id '[/bold]'"]),
    ("merge-id-too-long", ["merge", NEW, "--run-id", "a" * 200], ["at most 128"]),
    ("merge-exists", ["merge", NEW, "--run-id", OLD], ["exists already"]),
    ("merge-unknown-run", ["merge", "nope"], ["run 'nope': no such run folder"]),
    ("report-markup-run", ["report", "[/bold]x[red]"], ["run '[/bold]x[red]': no such run folder"]),
    ("report-empty-run", ["report", ""], ["run '': expected a run id"]),
    ("report-nul-run", ["report", "a\x00b"], ["expected a run id"]),
    (
        "report-missing-history",
        ["report", NEW, "--history", "/nonexistent/x"],
        ["--history", "no such folder"],
    ),
    ("compare-markup", ["compare", "[bold]a", NEW], ["run '[bold]a': no such run folder"]),
    ("compare-negative-gate", ["compare", OLD, NEW, "--fail-on-regression", "-1"], ["--fail-on-regression"]),
    ("compare-nan-gate", ["compare", OLD, NEW, "--fail-on-regression", "nan"], ["--fail-on-regression"]),
]


@pytest.mark.parametrize(("command", "expected"), [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_bad_command_line(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], expected: list[str]
) -> None:
    before = _tree(results)
    code = main([*command, "--results-dir", str(results), "--reports-dir", str(tmp_path / "reports")])
    out, err = capsys.readouterr()
    assert code == 2, out
    assert "Traceback" not in err + out and err.startswith("error: ")
    flat = " ".join(err.split())
    for fragment in expected:
        assert fragment in flat, f"{fragment!r} not in:\n{err}"
    _no_writes(results, before, tmp_path)
    assert not Path("/tmp/tfmh-evil").exists() and not (results.parent / "x").exists()


@pytest.mark.parametrize("bad", ["[/bold]", "[red]x[/red]", "profile[/]"])
def test_markup_in_profile_and_matrix_path_is_printed_literally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], root: Path, bad: str
) -> None:
    matrix = tmp_path / f"m{bad.replace('/', '_')}.yaml"
    shutil.copy(root / "matrix.yaml", matrix)
    assert main(["plan", "--offline", "--matrix", str(matrix), "--profile", bad]) == 2
    assert f"profiles.{bad}: no such profile" in " ".join(capsys.readouterr().err.split())
    assert main(["plan", "--offline", "--matrix", str(matrix), "--profile", "ci"]) == 0
    assert str(matrix) in capsys.readouterr().out.replace("\n", "")


def test_broken_run_is_skipped_in_the_site_index(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (results / OLD / "cells" / CELL).write_text("{", encoding="utf-8")
    reports = tmp_path / "reports"
    assert main(["report", NEW, "--results-dir", str(results), "--reports-dir", str(reports)]) == 0
    err = capsys.readouterr().err
    assert "warning: skipped run" in err and OLD in err and "not valid JSON" in err
    index = (reports / "index.html").read_text(encoding="utf-8")
    assert NEW in index and OLD not in index
    assert (reports / NEW / "index.html").is_file()


def test_broken_history_run_is_skipped_with_a_warning(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "history"
    shutil.copytree(results / OLD, history / OLD)
    (history / OLD / "manifest.json").write_text("[]", encoding="utf-8")
    args = ["report", NEW, "--history", str(history), "--results-dir", str(results)]
    assert main([*args, "--reports-dir", str(tmp_path / "reports")]) == 0
    assert "expected a run manifest" in capsys.readouterr().err


def test_failed_merge_leaves_no_folder(results: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = RunStore.write_record

    def flaky(self: RunStore, record: dict[str, Any]) -> Path:
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return real(self, record)

    monkeypatch.setattr(RunStore, "write_record", flaky)
    with pytest.raises(OSError):
        merge_runs([results / NEW], results, "merged-x")
    assert sorted(p.name for p in results.iterdir()) == [OLD, NEW]


def test_merge_writes_through_a_temporary_folder(results: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    renames: list[tuple[str, str]] = []
    real = merge_mod.os.rename

    def spy(src: Any, dst: Any) -> None:
        renames.append((Path(src).name, Path(dst).name))
        assert (Path(src) / "manifest.json").is_file()
        real(src, dst)

    monkeypatch.setattr(merge_mod.os, "rename", spy)
    out = merge_runs([results / NEW], results, "merged-x")
    assert out == results / "merged-x" and renames[0][0].startswith(".merge-merged-x.")
    assert len(load_run(out).records) == len(load_run(results / NEW).records)


def test_resume_reads_are_validated(results: Path) -> None:
    (results / NEW / "cells" / CELL).write_text('{"schema_version": 3}', encoding="utf-8")
    with pytest.raises(ResultError, match="schema_version 3 is newer"):
        RunStore(results / NEW).done()


def test_safe_id_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        checked_name("../x")
    assert checked_name("20261126T142000Z-ci-3f2a") == "20261126T142000Z-ci-3f2a"


def test_read_json_refuses_oversized_documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resultdocs, "MAX_DOC_BYTES", 10)
    path = tmp_path / "doc.json"
    path.write_text('{"a": "0123456789"}', encoding="utf-8")
    with pytest.raises(ResultError, match="larger than 10 bytes"):
        read_json(path)
