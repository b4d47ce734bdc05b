"""`harness bisect` end to end against the fake backend (the Backend protocol, realistic records): a planted
regression is found with the evidence of every probe stored; a release too noisy to decide leaves a bracket;
only the probed releases' images are made; bad command lines exit 2 before anything is written."""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness import cli
from harness.execution.bisect import BisectRequest, BisectResult, run_bisect
from harness.execution.execute import Availability
from harness.execution.runner import RunObserver
from harness.execution.settings import Overrides, RunOptions, RunSettings
from harness.matrix.plan import Cell
from harness.matrix.source import load_source
from harness.results.bisectdoc import read_bisect
from harness.results.store import load_run
from tests.fixtures.backend import FixtureBackend, Timing

MINORS = list(range(12, 22))  # TF 2.12 ... 2.21
IMAGES = "\n".join(
    f'  tf2.{m}-py3.11: {{tf: "2.{m}.0", package: tensorflow-cpu==2.{m}.0, python: "3.11", '
    "base: {kind: bootstrap, suite: bookworm}}"
    for m in MINORS
)
MATRIX = f"""\
version: 1
images:
{IMAGES}
workloads:
  mlp_fit: {{params: {{input: [numpy, tfdata]}}}}
  mlp_loop: {{params: {{mode: [graph, function]}}}}
profiles:
  timeline:
    repeats: 2
    max_repeats: 6
    timeout_s: 300
    quiet: {{wait_s: 0, reruns: 1}}
    params: {{epochs: 1, train_samples: 3200, warmup_steps: 10, window_steps: 10}}
"""


def _release(cell_id: str) -> int:
    return int(cell_id.split("-")[0].removeprefix("tf2."))


class PlantedTimings(dict[tuple[str, int], Timing]):
    """Step times per execution made on demand: releases from `first_bad` on are `slowdown` times slower;
    every execution varies by `noise`; a release in `noisy` is slower by exactly the threshold (5%) and
    varies by its own noise: no number of executions within the cap can tell it apart from the threshold."""

    def __init__(self, first_bad: int, slowdown: float, noise: float, noisy: dict[int, float]) -> None:
        super().__init__()
        self.first_bad, self.slowdown, self.noise, self.noisy = first_bad, slowdown, noise, noisy

    def __missing__(self, key: tuple[str, int]) -> Timing:
        cell_id, repeat = key
        minor = _release(cell_id)
        rng = random.Random(zlib.crc32(f"{cell_id}#{repeat}".encode()))
        base = 0.003 * (self.slowdown if minor >= self.first_bad else 1.0)
        base = 0.003 * 1.05 if minor in self.noisy else base
        step = base * (1 + rng.gauss(0, self.noisy.get(minor, self.noise)))
        windows = [round(step * (1 + rng.gauss(0, 0.01)), 7) for _ in range(8)]
        timing = Timing(
            step_time_s=windows,
            epoch_time_s=[round(step * 100, 4)],
            phases_s={
                "interpreter": 0.04,
                "import": 2.0,
                "data": 0.2,
                "build": 0.3,
                "first_step": 0.6,
                "eval": 0.4,
            },
            loss=[0.5],
            accuracy=[0.9],
            quality={"final_loss": 0.5, "final_accuracy": 0.9, "eval_loss": 0.5, "eval_accuracy": 0.9},
            rss_bytes=(400 + minor) * 2**20,
            model={
                "params": 203_530,
                "flops_per_sample_forward": 407_000,
                "flops_per_sample_train": 1_222_000,
            },
        )
        self[key] = timing
        return timing


@dataclass
class PlantedBackend(FixtureBackend):
    """The fixture backend, remembering which images it was asked to make."""

    made: list[str] = field(default_factory=list)

    def prepare(self, cells: list[Cell]) -> dict[str, Availability]:
        self.made += [c.image.name for c in cells]
        return super().prepare(cells)


@pytest.fixture
def matrix_path(tmp_path: Path) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(MATRIX, encoding="utf-8")
    return path


def _bisect(
    matrix_path: Path, tmp_path: Path, timings: PlantedTimings, probe: bool = True
) -> tuple[BisectResult, PlantedBackend]:
    source = load_source(matrix_path, "timeline")
    settings = RunSettings.resolve("timeline", source.plan.profile, Overrides(probe=probe))
    backend = PlantedBackend(timings=timings, start=1_800_000_000.0, seed=3)
    request = BisectRequest("mlp_fit", ("input=numpy",), "2.12", "2.21", 5.0)
    options = RunOptions(results_dir=tmp_path / "results")
    return run_bisect(source, settings, options, request, RunObserver(), backend), backend


def test_a_planted_regression_is_found_with_every_probe_recorded(matrix_path: Path, tmp_path: Path) -> None:
    result, backend = _bisect(matrix_path, tmp_path, PlantedTimings(16, 1.3, 0.01, {}))
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


def test_a_release_too_noisy_to_decide_leaves_a_bracket(matrix_path: Path, tmp_path: Path) -> None:
    result, _ = _bisect(matrix_path, tmp_path, PlantedTimings(17, 1.3, 0.01, {16: 0.05}), probe=False)
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


def test_no_regression_when_the_bad_end_is_not_slower(matrix_path: Path, tmp_path: Path) -> None:
    result, backend = _bisect(matrix_path, tmp_path, PlantedTimings(99, 1.0, 0.01, {}), probe=False)
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
