"""The local runner asks each interpreter once what it has and runs an image's cells only in an interpreter
with the image's TF minor and Python minor; the others are unavailable with the reason. Fake interpreters
(scripts that print versions and fake the payload) keep these tests free of TensorFlow."""

from __future__ import annotations

import json
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.execution.interpreters import interpreter_mismatch, parse_python_args, probe_interpreter
from harness.execution.local_backend import LocalBackend
from harness.matrix.config import load_matrix
from harness.matrix.plan import expand
from harness.results.resultdocs import validate_record
from harness.results.store import load_run
from tests.unit.test_runner import template_payload

ROOT = Path(__file__).resolve().parents[2]

MATRIX = textwrap.dedent(
    """\
    version: 1
    baseline: tf2.15-py3.11
    images:
      tf1.15-py3.6-official:
        tf: "1.15.5"
        package: tensorflow-gpu==1.15.5
        python: "3.6"
        cuda: "10.0"
        cudnn: "7.6"
        base: {kind: registry, image: "tensorflow/tensorflow:1.15.5-gpu-py3"}
        devices: [cpu]
      tf2.15-py3.11: {tf: "2.15.1", package: tensorflow-cpu==2.15.1, python: "3.11", base: {kind: bootstrap}}
      tf2.21-py3.11: {tf: "2.21.0", package: tensorflow-cpu==2.21.0, python: "3.11", base: {kind: bootstrap}}
    workloads:
      mlp_fit: {params: {input: numpy}}
    defaults: {epochs: 1, train_samples: 640, eval_samples: 320, warmup_steps: 2, window_steps: 4}
    profiles:
      quick: {repeats: 1, timeout_s: 120, quiet: {wait_s: 0, reruns: 0}, probe: false}
    """
)

FAKE = textwrap.dedent(
    """\
    #!{python}
    import json, sys
    VERSIONS = {versions}
    if sys.argv[1] == "-c":
        print("some import noise")
        print("TFMH-INTERPRETER " + json.dumps(VERSIONS))
        sys.exit(0)
    args = sys.argv[2:]
    out = args[args.index("--out") + 1]
    if "--probe" in args:
        doc = {{"kind": "tfmh.probe", "schema_version": 1, "status": "ok", "matmul_gflops": 50.0,
               "loop_mops": 20.0}}
    else:
        spec = json.load(open(args[args.index("--spec") + 1]))
        doc = json.load(open({template!r}))
        doc["cell_id"], doc["spec"] = spec["cell_id"], spec
        with open({calls!r}, "a") as fh:
            fh.write(json.dumps({{"python": sys.argv[0], "cell": spec["cell_id"], "data_dir": spec["data_dir"]}}))
            fh.write("\\n")
    with open(out, "w") as fh:
        json.dump(doc, fh)
    """
)


def fake_interpreter(
    folder: Path, name: str, tf: str | None, python: str = "3.11.7", keras: str | None = "2.15.0"
) -> Path:
    """An executable that answers the version probe like an interpreter with ``tf`` and writes a valid
    payload result for any spec (appending what it ran to ``folder/calls.jsonl``)."""
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / "template.json"
    if not template.exists():
        template.write_text(json.dumps(template_payload()), encoding="utf-8")
    versions = {"python": python, "tf": tf, "keras": keras if tf else None, "error": None}
    if tf is None:
        versions["error"] = "ModuleNotFoundError: No module named 'tensorflow'"
    path = folder / name
    path.write_text(
        FAKE.format(
            python=sys.executable,
            versions=repr(versions),
            template=str(template),
            calls=str(folder / "calls.jsonl"),
        ),
        encoding="utf-8",
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def calls(folder: Path) -> list[dict[str, str]]:
    path = folder / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(MATRIX, encoding="utf-8")
    return path


def test_probe_reads_the_versions_line(tmp_path: Path) -> None:
    py = fake_interpreter(tmp_path, "py215", "2.15.1")
    info = probe_interpreter(str(py))
    assert (info.python, info.tf, info.keras, info.error) == ("3.11.7", "2.15.1", "2.15.0", None)
    assert (info.python_minor, info.tf_minor) == ("3.11", "2.15")


def test_probe_of_the_host_python_without_tensorflow() -> None:
    info = probe_interpreter(sys.executable)
    assert info.python == ".".join(map(str, sys.version_info[:3]))
    if info.tf is None:
        assert info.error and "tensorflow" in info.error.lower()


def test_probe_of_something_that_is_not_python(tmp_path: Path) -> None:
    script = tmp_path / "nope"
    script.write_text("#!/bin/sh\necho hello; exit 3\n")
    script.chmod(0o755)
    info = probe_interpreter(str(script))
    assert info.tf is None and "exit 3" in (info.error or "")


def test_parse_python_args() -> None:
    assert parse_python_args(["/a/python", "tf2.15-py3.11=/b/python", "/a/python"]) == (
        ["/a/python"],
        {"tf2.15-py3.11": "/b/python"},
    )
    with pytest.raises(ConfigError, match="already mapped"):
        parse_python_args(["x=/a", "x=/b"])
    with pytest.raises(ConfigError, match="needs --python"):
        LocalBackend.from_args([])


def test_each_image_takes_the_interpreter_that_matches(tmp_path: Path, matrix: Path) -> None:
    fakes = tmp_path / "fakes"
    py215 = fake_interpreter(fakes, "py215", "2.15.1")
    py221 = fake_interpreter(fakes, "py221", "2.21.0", keras="3.10.0")
    cells = expand(load_matrix(matrix), "quick").cells
    backend = LocalBackend.from_args([str(py221), str(py215)])
    probed: list[str] = []
    real = backend.probe
    backend.probe = lambda p: probed.append(p) or real(p)  # type: ignore[func-returns-value]
    avail = backend.prepare(cells)
    assert avail["tf2.15-py3.11"].available and avail["tf2.21-py3.11"].available
    assert not avail["tf1.15-py3.6-official"].available
    reason = avail["tf1.15-py3.6-official"].reason or ""
    assert reason.startswith("no local interpreter has TF 1.15 on Python 3.6")
    assert f"{py215}: TF 2.15.1 on Python 3.11.7" in reason
    assert sorted(probed) == sorted([str(py215), str(py221)])  # asked once each
    described = backend.describe()["interpreters"]
    assert described["tf2.15-py3.11"] == {
        "path": str(py215),
        "python": "3.11.7",
        "tf": "2.15.1",
        "keras": "2.15.0",
    }
    assert described["tf2.21-py3.11"]["path"] == str(py221)


def test_one_interpreter_runs_only_its_image(tmp_path: Path, matrix: Path) -> None:
    py = fake_interpreter(tmp_path, "py215", "2.15.1")
    cells = expand(load_matrix(matrix), "quick").cells
    avail = LocalBackend(python=str(py)).prepare(cells)
    assert [n for n, a in avail.items() if a.available] == ["tf2.15-py3.11"]
    assert avail["tf2.21-py3.11"].reason == (
        f"local interpreter {py} has TF 2.15.1 on Python 3.11.7; image tf2.21-py3.11 needs TF 2.21 on Python 3.11"
    )


def test_pinned_interpreter_is_still_checked(tmp_path: Path, matrix: Path) -> None:
    py = fake_interpreter(tmp_path, "py215", "2.15.1")
    notf = fake_interpreter(tmp_path, "notf", None)
    cells = expand(load_matrix(matrix), "quick").cells
    backend = LocalBackend.from_args([f"tf2.21-py3.11={py}", f"tf2.15-py3.11={notf}"])
    avail = backend.prepare(cells)
    assert not any(a.available for a in avail.values())
    assert "no local interpreter for image tf1.15-py3.6-official" in (
        avail["tf1.15-py3.6-official"].reason or ""
    )
    assert avail["tf2.15-py3.11"].reason == (
        f"local interpreter {notf}: no TensorFlow (ModuleNotFoundError: No module named 'tensorflow')"
    )


def test_missing_interpreter_is_a_usage_error(matrix: Path) -> None:
    cells = expand(load_matrix(matrix), "quick").cells
    with pytest.raises(ConfigError, match="not an interpreter"):
        LocalBackend.from_args(["tf2.15-py3.11=/nonexistent/python"]).prepare(cells)


def test_interpreter_mismatch_needs_both_minors(matrix: Path) -> None:
    from harness.execution.interpreters import InterpreterInfo

    image = load_matrix(matrix).images["tf2.15-py3.11"]
    assert interpreter_mismatch(InterpreterInfo("p", "3.11.2", "2.15.0"), image) is None
    assert interpreter_mismatch(InterpreterInfo("p", "3.10.2", "2.15.1"), image)
    assert interpreter_mismatch(InterpreterInfo("p", "3.11.2", "2.16.1"), image)


def test_cli_run_records_name_the_interpreter(tmp_path: Path, matrix: Path, capsys) -> None:
    fakes = tmp_path / "fakes"
    py215 = fake_interpreter(fakes, "py215", "2.15.1")
    py221 = fake_interpreter(fakes, "py221", "2.21.0", keras="3.10.0")
    results = tmp_path / "results"
    argv = ["run", "--runner", "local", "--matrix", str(matrix), "--profile", "quick"]
    argv += ["--python", str(py215), "--python", f"tf2.21-py3.11={py221}", "--results-dir", str(results)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"local interpreter {py215}: TF 2.15.1, Python 3.11.7, Keras 2.15.0" in out
    (run_dir,) = list(results.iterdir())
    run = load_run(run_dir)
    by_image = {r["cell"]["image"]: r for r in run.records}
    assert by_image["tf2.15-py3.11"]["runner"]["python"] == str(py215)
    assert by_image["tf2.15-py3.11"]["runner"]["versions"]["tf"] == "2.15.1"
    assert by_image["tf2.21-py3.11"]["runner"]["python"] == str(py221)
    assert by_image["tf2.21-py3.11"]["runner"]["versions"]["keras"] == "3.10.0"
    assert {r["runner"]["kind"] for r in run.records if r["status"] == "ok"} == {"local"}
    assert by_image["tf1.15-py3.6-official"]["status"] == "unavailable"
    assert "needs TF 1.15 on Python 3.6" in by_image["tf1.15-py3.6-official"]["reason"]
    for record in run.records:
        assert validate_record(record) == []
    ran = {(c["python"], c["cell"].split("-cpu")[0]) for c in calls(fakes)}
    assert ran == {(str(py215), "tf2.15-py3.11"), (str(py221), "tf2.21-py3.11")}


def test_local_runner_points_the_spec_at_the_host_data_dir(tmp_path: Path, matrix: Path) -> None:
    """The local runner has no mounts: the runner's data folder reaches the payload as the host path."""
    from harness.execution.availability import prepare_cells
    from harness.execution.runner import Job, Runner
    from harness.results.store import RunStore

    py = fake_interpreter(tmp_path / "fakes", "py215", "2.15.1")
    cell = next(c for c in expand(load_matrix(matrix), "quick").cells if c.image.name == "tf2.15-py3.11")
    data = tmp_path / "data"
    data.mkdir()
    backend = LocalBackend(python=str(py), telemetry_interval_s=None)
    (cell,) = prepare_cells(backend, [cell])
    runner = Runner(backend, RunStore(tmp_path / "run"), "r", 60, data_dir=data)
    (record,) = runner.run([Job(cell, 0)])
    assert record["status"] == "ok", record["reason"]
    assert calls(tmp_path / "fakes")[-1]["data_dir"] == str(data.resolve())
    assert record["payload"]["spec"]["data_dir"] == str(data.resolve())


def test_cli_local_runner_uses_the_data_dir(tmp_path: Path, matrix: Path, capsys) -> None:
    """`--runner local --data-dir X`: the payload is told X (it was ignored once)."""
    fakes = tmp_path / "fakes"
    py = fake_interpreter(fakes, "py215", "2.15.1")
    data = tmp_path / "my-data"
    data.mkdir()
    argv = ["run", "--runner", "local", "--python", str(py), "--matrix", str(matrix), "--profile", "quick"]
    argv += ["--data-dir", str(data), "--results-dir", str(tmp_path / "results")]
    assert main(argv) == 0, capsys.readouterr().err
    seen = {c["data_dir"] for c in calls(fakes)}
    assert seen == {str(data.resolve())}


def test_cli_data_dir_must_exist(tmp_path: Path, matrix: Path, capsys) -> None:
    argv = ["run", "--runner", "local", "--python", sys.executable, "--matrix", str(matrix), "--profile"]
    argv += ["quick", "--data-dir", str(tmp_path / "nope"), "--results-dir", str(tmp_path / "results")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--data-dir {tmp_path / 'nope'}: no such folder" in err and "Traceback" not in err
    assert not (tmp_path / "results").exists()
