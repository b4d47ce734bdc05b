"""`harness bisect` end to end against the fake backend (the Backend protocol, realistic records): a planted
regression is found with the evidence of every probe stored; a release too noisy to decide leaves a bracket;
only the probed releases' images are made; bad command lines exit 2 before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rich.console import Console

from harness import cli
from harness.execution.bisect import BisectResult
from harness.execution.execute import Availability
from harness.matrix.plan import Cell
from harness.report.bisectsummary import bisect_summary
from harness.results.bisectdoc import read_bisect
from harness.results.store import load_run
from tests.fixtures.backend import FixtureBackend
from tests.fixtures.planted import PlantedTimings
from tests.fixtures.release_runs import BISECT_MINORS, BISECT_PROFILE, START, record_bisect_run, write_matrix


@dataclass
class PlantedBackend(FixtureBackend):
    """The fixture backend, remembering which images it was asked to make."""

    made: list[str] = field(default_factory=list)

    def prepare(self, cells: list[Cell]) -> dict[str, Availability]:
        self.made += [c.image.name for c in cells]
        return super().prepare(cells)


@pytest.fixture
def matrix_path(tmp_path: Path) -> Path:
    return write_matrix(tmp_path, BISECT_MINORS, BISECT_PROFILE)


def _bisect(
    tmp_path: Path, timings: PlantedTimings, probe: bool = True
) -> tuple[BisectResult, PlantedBackend]:
    backend = PlantedBackend(timings=timings, start=START, seed=3)
    return record_bisect_run(tmp_path, backend, probe), backend


def test_a_planted_regression_is_found_with_every_probe_recorded(tmp_path: Path) -> None:
    result, backend = _bisect(tmp_path, PlantedTimings(16, 1.3, 0.01, {}))
    assert result.answer is not None and result.exit_code() == 0
    assert (result.answer.kind, result.answer.first_bad, result.answer.last_good) == ("found", "2.16", "2.15")
    doc = read_bisect(result.path)
    assert doc is not None and doc == result.doc
    probes = doc["probes"]
    assert [p["release"] for p in probes] == ["2.21", "2.16", "2.14", "2.15"]
    assert [p["decision"] for p in probes] == ["regressed", "regressed", "not regressed", "not regressed"]
    assert probes[0]["purpose"] == "verify bad end" and {p["purpose"] for p in probes[1:]} == {"bisect"}
    for p in probes:
        assert p["n_probed"] >= 2 and p["n_good"] >= 2 and p["rounds"] >= 2
        assert p["ratio_lo"] <= p["ratio"] <= p["ratio_hi"]
        assert len(p["probed_repeats"]) == p["rounds"] == len(p["good_repeats"])
    assert probes[1]["ratio"] == pytest.approx(1.3, rel=0.05)
    # the good release's executions of earlier probes are reused (the fake host's speed is steady)
    assert probes[0]["good_reused"] == [] and probes[1]["good_reused"] == probes[0]["good_repeats"]
    assert probes[1]["reused_from"] == [0] and "reused" in probes[1]["reuse_note"]
    # only the probed releases' images (and the good one's) were made, once each
    assert sorted(set(backend.made)) == sorted(f"tf2.{m}-py3.11" for m in (12, 14, 15, 16, 21))
    assert len(backend.made) == len(set(backend.made))
    run = load_run(result.path)
    assert {r["cell"]["image"] for r in run.records} == set(backend.made)
    assert run.manifest["baseline"] == "tf2.12-py3.11" and run.manifest["finished_at"]
    assert (result.path / "analysis.json").is_file()
    assert len(run.probes) == len(probes)


def test_a_release_too_noisy_to_decide_leaves_a_bracket(tmp_path: Path) -> None:
    result, _ = _bisect(tmp_path, PlantedTimings(17, 1.3, 0.01, {16: 0.05}), probe=False)
    assert result.answer is not None and result.exit_code() == 1
    answer = result.answer
    assert (answer.kind, answer.last_good, answer.first_bad, answer.undecided) == (
        "inconclusive",
        "2.15",
        "2.17",
        ["2.16"],
    )
    (noisy,) = [p for p in result.doc["probes"] if p["release"] == "2.16"]
    assert noisy["decision"] == "inconclusive" and noisy["rounds"] == 6
    assert "the repeat cap" in noisy["reason"] and noisy["reason"] in answer.text
    # without calibration probes the good executions are never reused
    assert all(p["good_reused"] == [] for p in result.doc["probes"])
    assert "no calibration probe" in result.doc["probes"][1]["reuse_note"]


def test_no_regression_when_the_bad_end_is_not_slower(tmp_path: Path) -> None:
    result, backend = _bisect(tmp_path, PlantedTimings(99, 1.0, 0.01, {}), probe=False)
    assert result.answer is not None and result.answer.kind == "no regression"
    assert [p["release"] for p in result.doc["probes"]] == ["2.21"]
    assert sorted(set(backend.made)) == ["tf2.12-py3.11", "tf2.21-py3.11"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--good", "2.3", "--bad", "2.21"], "--good 2.3: no image for that TF release"),
        (["--good", "2.21", "--bad", "2.12"], "the good release must be older than the bad one"),
        (["--good", "2.12", "--bad", "2.12"], "the good release must be older than the bad one"),
        (["--good", "2.12", "--bad", "2.21", "--workload", "cnn_fit"], "--workload cnn_fit: not a workload"),
        (["--good", "2.12", "--bad", "2.21", "--param", "input=csv"], "--param input:"),
        (
            ["--good", "2.12", "--bad", "2.21", "--param", "mode=graph"],
            "--param mode: parameter 'mode' applies",
        ),
        (["--good", "2.12", "--bad", "2.21", "--param", "input"], "expected KEY=VALUE"),
        (["--good", "2.12", "--bad", "2.21", "--param", "batch_size=0"], "--param batch_size:"),
        (["--good", "2.12", "--bad", "2.21", "--max-repeats", "1"], "--max-repeats"),
        (["--good", "2.12", "--bad", "2.21", "--shard", "1/2"], "--shard: a bisection"),
        (["--good", "2.12", "--bad", "2.21", "--threshold", "nan"], "--threshold: expected a percentage"),
    ],
)
def test_bad_command_lines_exit_2_with_one_message(
    matrix_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base = ["bisect", "--matrix", str(matrix_path), "--results-dir", str(tmp_path / "results")]
    base += ["--threshold", "5"]
    if "--workload" not in args:
        base += (
            ["--workload", "mlp_fit", "--param", "input=numpy"]
            if "--param" not in args
            else ["--workload", "mlp_fit"]
        )
    assert cli.main(base + args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()


def test_an_unpinned_axis_is_refused(
    matrix_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "bisect",
        "--matrix",
        str(matrix_path),
        "--workload",
        "mlp_fit",
        "--good",
        "2.12",
        "--bad",
        "2.21",
    ]
    assert cli.main([*argv, "--threshold", "5", "--results-dir", str(tmp_path / "r")]) == 2
    assert (
        "mlp_fit has more than one value for input (one of numpy, tfdata): pick one"
        in capsys.readouterr().err
    )


def test_terminal_summary_names_the_answer_and_every_probe(tmp_path: Path) -> None:
    result, _ = _bisect(tmp_path, PlantedTimings(16, 1.3, 0.01, {}), probe=False)
    console = Console(record=True, width=160)
    console.print(bisect_summary(result))
    text = console.export_text()
    assert "mlp_fit on cpu" in text and "TF 2.12 (good)" in text and "TF 2.21 (bad)" in text
    rows = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert [r[1] for r in rows] == ["2.21", "2.16", "2.14", "2.15"]
    assert text.count("not regressed") == 2 and "found: 2.16 is the first release that regressed" in text
    assert str(result.path) in text.replace("\n", "")


def test_a_contended_execution_is_rerun_and_excluded_from_the_probe(tmp_path: Path) -> None:
    busy = frozenset({("tf2.21-py3.11-cpu/mlp_fit-numpy/bs32", 1, 0)})
    backend = PlantedBackend(timings=PlantedTimings(16, 1.3, 0.01, {}), start=START, seed=3, busy=busy)
    result = record_bisect_run(tmp_path, backend, probe=False)
    first = result.doc["probes"][0]
    assert first["release"] == "2.21" and first["n_contended"] == 1
    assert first["n_probed"] == len(first["probed_repeats"]) == 3  # the re-run replaced it
    records = load_run(result.path).records
    kept = [r for r in records if r.get("rerun")]
    assert [(r["cell_id"], r["repeat"], r["contention"]["contended"]) for r in kept] == [
        ("tf2.21-py3.11-cpu/mlp_fit-numpy/bs32", 1, True)
    ]
