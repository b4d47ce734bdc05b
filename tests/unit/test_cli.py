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


def test_compare_exit_codes(results: Path, capsys) -> None:
    old, new = _runs(results)
    args = ["compare", old, new, "--results-dir", str(results)]
    assert main(args) == 0  # no threshold: report only
    out = capsys.readouterr().out
    assert "mlp_fit" in out
    assert main([*args, "--fail-on-regression", "1"]) == 1
    assert main([*args, "--fail-on-regression", "1000"]) == 0
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
