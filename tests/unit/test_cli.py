"""The CLI on recorded runs: report, compare (exit codes), merge; plan --format json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "runs"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    out = tmp_path / "results"
    shutil.copytree(FIXTURES, out)
    return out


def _runs(results: Path) -> list[str]:
    return sorted(p.name for p in results.iterdir())


def test_report_writes_run_page_and_site_index(results: Path, tmp_path: Path, capsys) -> None:
    reports = tmp_path / "reports"
    assert main(["report", "latest", "--results-dir", str(results), "--reports-dir", str(reports)]) == 0
    latest = _runs(results)[-1]
    page = reports / latest / "index.html"
    assert page.is_file()
    index = (reports / "index.html").read_text(encoding="utf-8")
    assert all(run in index for run in _runs(results))
    assert str(page) in capsys.readouterr().out


def test_report_unknown_run_exits_2(results: Path, tmp_path: Path, capsys) -> None:
    assert main(["report", "nope", "--results-dir", str(results), "--reports-dir", str(tmp_path / "r")]) == 2
    assert "no such run folder" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def _slowed(results: Path, run: str, factor: float) -> str:
    """A copy of `run` whose ok executions' windows are `factor` times slower (its stored analysis stale)."""
    name = f"{run}-slowed"
    shutil.copytree(results / run, results / name)
    for path in (results / name / "cells").glob("*.json"):
        rec = json.loads(path.read_text(encoding="utf-8"))
        if rec["status"] == "ok":
            steps = rec["payload"]["steps"]
            steps["step_time_s"] = [t * factor for t in steps["step_time_s"]]
            path.write_text(json.dumps(rec), encoding="utf-8")
    return name


def test_compare_exit_codes(results: Path, capsys) -> None:
    old, new = _runs(results)
    args = ["compare", old, new, "--results-dir", str(results)]
    assert main(args) == 0  # no threshold: report only
    out = capsys.readouterr().out
    assert "mlp_fit" in out
    assert main([*args, "--fail-on-regression", "1"]) == 0  # the fixture runs differ by ~3%: inside the CIs
    slower = _slowed(results, new, 1.5)
    assert main(["compare", new, slower, "--results-dir", str(results), "--fail-on-regression", "5"]) == 1
    assert main(["compare", new, slower, "--results-dir", str(results), "--fail-on-regression", "1000"]) == 0
    assert main(["compare", new, new, "--results-dir", str(results), "--fail-on-regression", "1"]) == 0


def test_merge_via_cli(results: Path, capsys) -> None:
    old, _ = _runs(results)
    assert main(["merge", old, "--results-dir", str(results), "--run-id", "merged-1"]) == 0
    manifest = json.loads((results / "merged-1" / "manifest.json").read_text())
    assert manifest["merged_from"][0]["run_id"] == old
    assert main(["merge", old, "--results-dir", str(results), "--run-id", "merged-1"]) == 2  # exists already


def test_plan_json(root: Path, capsys) -> None:
    assert (
        main(
            [
                "plan",
                "--offline",
                "--matrix",
                str(root / "matrix.yaml"),
                "--profile",
                "ci",
                "--format",
                "json",
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert doc["profile"] == "ci" and doc["baseline"] == "tf1.15-py3.6-official"
    ids = [c["cell_id"] for c in doc["cells"]]
    assert "tf2.21-py3.11-cpu/mlp_loop-eager/bs32" in ids
    assert all(c["device"] == "cpu" for c in doc["cells"])


def _plan_cells(root: Path, capsys, *extra: str) -> dict[str, dict]:
    argv = ["plan", "--offline", "--matrix", str(root / "matrix.yaml"), "--format", "json", *extra]
    assert main(argv) == 0
    return {c["cell_id"]: c for c in json.loads(capsys.readouterr().out)["cells"]}


def test_param_lays_values_over_the_profile_and_its_includes(root: Path, capsys) -> None:
    before = _plan_cells(root, capsys, "--profile", "public-record")
    after = _plan_cells(root, capsys, "--profile", "public-record", "--param", "epochs=3")
    assert len(after) == len(before)
    users = lambda cells: [c for c in cells.values() if c["workload"] in ("mlp_loop", "tiny_fit")]  # noqa: E731
    assert {c["params"]["epochs"] for c in users(before)} == {1, 200}  # the include entries say 1
    assert {c["params"]["epochs"] for c in users(after)} == {3}  # include entries follow too
    rest = {k: c for k, c in after.items() if c["workload"] == "call_overhead"}  # no epochs
    assert rest and all(before[k]["params"] == c["params"] for k, c in rest.items())


def test_param_on_a_profile_axis_keeps_the_cells_ids(root: Path, capsys) -> None:
    """public-record's val_samples: [0, 10] is a profile-level axis: collapsed by --param, the remaining
    cells keep the ids they have in the full profile (so compare and history find them)."""
    before = _plan_cells(root, capsys, "--profile", "public-record")
    after = _plan_cells(root, capsys, "--profile", "public-record", "--param", "val_samples=10")
    assert set(after) < set(before) and all("val_samples=10" in k for k in after if "tiny_fit" in k)


def test_param_reaches_include_entries_and_reads_decimal_integers(root: Path, capsys) -> None:
    cells = _plan_cells(root, capsys, "--profile", "public-record", "--param", "mode=function")
    assert {c["params"]["mode"] for c in cells.values() if c["workload"] == "mlp_loop"} == {"function"}
    cells = _plan_cells(root, capsys, "--profile", "ci", "--param", "seed=010")
    assert {c["params"]["seed"] for c in cells.values()} == {10}  # decimal, never YAML's octal


def test_param_collapses_an_axis(root: Path, capsys) -> None:
    before = _plan_cells(root, capsys, "--profile", "ci")
    after = _plan_cells(root, capsys, "--profile", "ci", "--param", "input=numpy")
    fits = lambda cells: {k for k, c in cells.items() if c["workload"] in ("mlp_fit", "cnn_fit")}  # noqa: E731
    assert {after[k]["params"]["input"] for k in fits(after)} == {"numpy"}
    assert len(fits(after)) == len(fits(before)) // 2
    assert set(after) - fits(after) == set(before) - fits(before)


def test_shard_option(root: Path, capsys) -> None:
    seen: list[str] = []
    for k in (1, 2, 3):
        argv = [
            "plan",
            "--offline",
            "--matrix",
            str(root / "matrix.yaml"),
            "--profile",
            "ci",
            "--format",
            "json",
        ]
        assert main([*argv, "--shard", f"{k}/3"]) == 0
        seen += [c["cell_id"] for c in json.loads(capsys.readouterr().out)["cells"]]
    assert len(seen) == len(set(seen)) == 21


@pytest.mark.parametrize("command", ["build", "run"])
def test_no_engine_is_one_clear_error(root: Path, tmp_path: Path, command: str, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-such-docker.sock")
    extra = ["--results-dir", str(tmp_path / "results")] if command == "run" else []
    assert main([command, "--matrix", str(root / "matrix.yaml"), "--profile", "ci", *extra]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Docker engine" in err
    assert err.count("error:") == 1
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "A", "B", "--fail-on-regression", "-1"], "--fail-on-regression: expected a percentage"),
        (["compare", "A", "B", "--fail-on-regression", "nan"], "--fail-on-regression: expected a percentage"),
        (["compare", "A", "B", "--margin", "0"], "--margin: expected 0 < PCT <= 50"),
        (
            ["report", "latest", "--history", "/nonexistent/results"],
            "--history /nonexistent/results: no such",
        ),
        (["run", "--repeats", "0", "--profile", "ci"], "--repeats: expected 1..100, got 0"),
        (["run", "--budget", "soon", "--profile", "ci"], "--budget: 'soon' is not a duration"),
        (
            ["run", "--cpuset", "x", "--profile", "ci"],
            "--cpuset: expected a CPU list such as 0-1 or 0,2, got 'x'",
        ),
        (["run", "--resume", "", "--profile", "ci"], "--resume: expected a run id or path"),
        (["run", "--shard", "", "--profile", "ci"], "--shard: expected K/N (e.g. 2/4), got ''"),
        (["run", "--reruns", "11", "--profile", "ci"], "--reruns: expected 0..10, got 11"),
        (
            ["run", "--data-dir", "/nonexistent/data", "--profile", "ci"],
            "--data-dir /nonexistent/data: no such",
        ),
        (["run", "--runner", "local", "--profile", "ci"], "--runner local needs --python PATH"),
        (
            ["run", "--memory", "lots", "--profile", "ci"],
            "--memory: expected bytes or a number with k, m or g",
        ),
        (["run", "--param", "epochs=0", "--profile", "ci"], "--param epochs:"),
        (["run", "--param", "epochs", "--profile", "ci"], "--param 'epochs': expected KEY=VALUE"),
        (["run", "--param", "wobble=1", "--profile", "ci"], "--param wobble: unknown parameter"),
        (["run", "--param", "epochs=[1, 2]", "--profile", "ci"], "--param epochs: expected one value"),
        (
            ["run", "--param", "epochs=1", "--param", "epochs=2", "--profile", "ci"],
            "--param epochs: given twice",
        ),
        (["run", "--param", "epochs=1.5", "--profile", "ci"], "--param epochs: expected"),
        (
            ["run", "--param", "mode=eager", "--profile", "measure"],
            "--param mode=eager: profile 'measure' excludes every cell it applies to",
        ),
        (
            ["run", "--param", "calls=10", "--profile", "ci"],
            "--param calls: no workload of profile 'ci' uses it",
        ),
    ],
)
def test_bad_values_exit_2_without_writing(argv, message, results: Path, tmp_path: Path, capsys) -> None:
    argv = [
        a.replace("A", _runs(results)[0]).replace("B", _runs(results)[1]) if len(a) == 1 else a for a in argv
    ]
    if argv[0] != "run":
        argv += ["--results-dir", str(results)]
    else:
        argv += [
            "--matrix",
            str(Path(__file__).resolve().parents[2] / "matrix.yaml"),
            "--results-dir",
            str(tmp_path / "new-results"),
        ]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_compare_json_is_machine_readable(results: Path, capsys) -> None:
    old, new = _runs(results)
    assert main(["compare", old, new, "--results-dir", str(results), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "tfmh.compare" and doc["a"] == old and doc["b"] == new and doc["gate"] is None
    assert doc["cells"] and all(c["verdict"] in doc["counts"] for c in doc["cells"])
    assert all(set(c) >= {"ratio", "ci", "verdict", "executions", "contended_excluded"} for c in doc["cells"])


def test_compare_names_cells_whose_parameters_differ(results: Path, capsys) -> None:
    old, new = _runs(results)
    argv = ["compare", old, new, "--results-dir", str(results)]
    assert main([*argv, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == {"changed": {}, "note": None}
    in_a = {c["cell_id"] for c in json.loads((results / old / "manifest.json").read_text())["cells"]}
    path = results / new / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in manifest["cells"] if c["cell_id"] in in_a and "train_samples" in c["params"])
    was = cell["params"]["train_samples"]
    cell["params"]["train_samples"] = was // 2
    path.write_text(json.dumps(manifest), encoding="utf-8")
    assert main([*argv, "--format", "json"]) == 0
    changed = json.loads(capsys.readouterr().out)["params"]["changed"]
    assert changed == {cell["cell_id"]: {"train_samples": [was, was // 2]}}
    assert main(argv) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "warning: 1 cell(s) ran with other parameters in A and B (train_samples)" in out
    assert main([*argv, "--format", "json", "--fail-on-regression", "0"]) in (0, 1)
    doc = json.loads(capsys.readouterr().out)
    (marked,) = [c for c in doc["cells"] if c["params_changed"]]
    assert marked["cell_id"] == cell["cell_id"] and marked["regression"] is None
    assert cell["cell_id"] not in doc["regressions"]


def test_param_text_reads_back_as_the_same_values() -> None:
    from harness.matrix.params import format_assignments, parse_assignments

    values = {"epochs": 1, "steps_per_epoch": None, "input": "numpy"}
    text = format_assignments(values)
    assert text == "--param epochs=1 --param input=numpy --param steps_per_epoch=null"
    assert parse_assignments(text.split()[1::2]) == values
