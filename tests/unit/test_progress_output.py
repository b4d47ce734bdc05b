"""What a newcomer sees: `harness build` / `harness run` under a pseudo-terminal show status lines and a
progress bar while the full build logs go to files (a failing build prints its tail); not on a terminal the
output is plain timestamped lines without a single escape sequence (snapshots, timestamps normalised)."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness.errors import BuildError
from harness.execution.runner import Job
from harness.images.asof import policy_for
from harness.images.enginelogs import build_failure_message
from harness.images.imageplan import ImageStatus, short_engine_reason
from harness.images.wheelhouse import WheelLock, lock_key, lock_path, platform_tags
from harness.matrix.plan import Cell, expand
from harness.report.builddisplay import BuildDisplay
from harness.report.console import strip_control
from harness.report.runprogress import ProgressObserver
from tests.snapshot import check_snapshot
from tests.unit.test_local_interpreters import fake_interpreter

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
RAW_DNS = (
    'Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 127.0.0.53:53: '
    "server misbehaving"
)
NOISE_LINES = 400

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
    workloads:
      mlp_fit: {params: {input: [numpy, tfdata]}}
    defaults: {epochs: 1, train_samples: 640, eval_samples: 320, warmup_steps: 2, window_steps: 4}
    profiles:
      tiny: {repeats: 2, timeout_s: 120, quiet: {wait_s: 0, reruns: 0}}
    """
)


class FakeEngine:
    """Enough of DockerEngine for `harness build`: the bootstrap base exists, the registry is unreachable,
    a build streams NOISE_LINES lines to its log (and fails when FAKE_BUILD_FAIL is set)."""

    def __init__(self) -> None:
        self.known: dict[str, str] = {}

    def image_id(self, tag: str) -> str | None:
        if tag.startswith("tfmh/base-"):
            return "sha256:base"
        return self.known.get(tag)

    def image_size(self, tag: str) -> int | None:
        return 1_440_000_000 if tag in self.known else None

    def registry_pull(self, ref: str, timeout_s: float = 60.0) -> tuple[bool, str]:
        return False, RAW_DNS

    def prune_dangling_images(self, label_filter: dict[str, str]) -> int:
        return 0

    def build(self, ctx: Path, dockerfile: str, tag: str, buildargs: Any, labels: Any, on_log: Any, log_path: Path,
              ) -> str:  # fmt: skip
        log_path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"Step {i}/{NOISE_LINES} : noise line {i}" for i in range(NOISE_LINES)]
        with log_path.open("w") as log:
            for i, line in enumerate(lines):
                log.write(line + "\n")
                on_log(line)
                if i % 100 == 0:
                    time.sleep(0.3)  # let the live display refresh
        if os.environ.get("FAKE_BUILD_FAIL"):
            raise BuildError(build_failure_message(tag, "exit code 1", log_path, lines[-30:]))
        self.known[tag] = "sha256:built"
        return "sha256:built"


DRIVER = textwrap.dedent(
    """\
    import sys
    sys.path.insert(0, {root!r})
    from harness import cli
    from harness.execution import backends
    from tests.unit.test_progress_output import FakeEngine
    backends.connect_engine = FakeEngine
    sys.exit(cli.main(sys.argv[1:]))
    """
)


def _setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(matrix, cache dir, driver script); the cache holds an empty wheel lock so no pip runs."""
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX, encoding="utf-8")
    cache = tmp_path / "cache"
    reqs, platforms = ("tensorflow-cpu==2.15.1",), platform_tags(36)
    path = lock_path(cache, "3.11", lock_key(reqs, "3.11", platforms, policy_for(reqs)))
    path.parent.mkdir(parents=True)
    path.write_text(WheelLock(reqs, "3.11", platforms, ()).to_json(), encoding="utf-8")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(root=str(ROOT)), encoding="utf-8")
    return matrix, cache, driver


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE"}}
    return {**env, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "40", **extra}


def run_in_pty(argv: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run argv with stdin/stdout/stderr on a pseudo-terminal; (exit code, everything it wrote)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        code = proc.wait(timeout=30)
    return code, b"".join(chunks).decode("utf-8", "replace")


def _build_argv(driver: Path, matrix: Path, cache: Path) -> list[str]:
    return [sys.executable, str(driver), "build", "--matrix", str(matrix), "--profile", "tiny",
            "--cache-dir", str(cache)]  # fmt: skip


def test_build_on_a_terminal_shows_status_lines_and_logs_go_to_files(tmp_path: Path) -> None:
    matrix, cache, driver = _setup(tmp_path)
    code, out = run_in_pty(_build_argv(driver, matrix, cache), _env())
    assert code == 0, out
    assert "\x1b[" in out  # a live display, not plain lines
    text = strip_control(out)
    (log,) = (cache / "logs").glob("build-tf2.15-py3.11-*.log")
    assert log.read_text().count("noise line") == NOISE_LINES  # the full log is in the file
    shown = sum(f"noise line {i}\n" in text or f"noise line {i} " in text for i in range(NOISE_LINES))
    assert shown < NOISE_LINES // 10, text[-3000:]  # and not on the terminal
    assert text.count(f"full build logs: {cache / 'logs'}/") == 1
    assert "tf2.15-py3.11" in text and "ready" in text and "1.44 GB" in text
    assert "registry unreachable: registry-1.docker.io (no DNS)" in text
    assert "server misbehaving" not in text  # the raw engine error stays in the log
    assert "server misbehaving" in (cache / "logs" / "pull-tf1.15-py3.6-official.log").read_text()


def test_failing_build_on_a_terminal_prints_its_log_tail(tmp_path: Path) -> None:
    matrix, cache, driver = _setup(tmp_path)
    code, out = run_in_pty(_build_argv(driver, matrix, cache), _env(FAKE_BUILD_FAIL="1"))
    assert code == 2, out
    text = strip_control(out)
    assert "build failed" in text
    assert f"noise line {NOISE_LINES - 1}" in text and f"noise line {NOISE_LINES - 30}" in text  # the tail
    assert "noise line 100\n" not in text
    assert text.count(f"| Step {NOISE_LINES - 1}/") == 1  # printed once, not again by the error line
    assert "error: image tf2.15-py3.11: build of image" in text and "(log tail above)" in text


def test_verbose_build_streams_everything(tmp_path: Path) -> None:
    matrix, cache, driver = _setup(tmp_path)
    proc = subprocess.run(
        [*_build_argv(driver, matrix, cache), "-v"], capture_output=True, text=True, env=_env(), cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(f"noise line {i}\n" in proc.stdout for i in range(NOISE_LINES))


def test_run_on_a_terminal_shows_a_progress_bar_and_a_line_per_execution(tmp_path: Path) -> None:
    matrix, _, driver = _setup(tmp_path)
    py = fake_interpreter(tmp_path / "fakes", "py215", "2.15.1")
    argv = [sys.executable, str(driver), "run", "--runner", "local", "--python", str(py), "--matrix", str(matrix),
            "--profile", "tiny", "--results-dir", str(tmp_path / "results")]  # fmt: skip
    code, out = run_in_pty(argv, _env())
    assert code == 0, out
    text = strip_control(out.replace("\r", "\n"))
    assert "━" in text and "ETA" in text  # the rich progress bar
    finished = re.findall(r"^ *(ok|contended)  tf2\.15-py3\.11-cpu/mlp_fit-\w+/bs32 #\d", text, re.M)
    assert len(finished) == 4, text  # 2 cells x 2 repeats (contended: other processes were busy)
    assert "unavailable  tf1.15-py3.6-official-cpu/mlp_fit-numpy/bs32 #0" in text
    assert "needs TF 1.15 on Python 3.6" in text
    assert f"local interpreter {py}: TF 2.15.1, Python 3.11.7" in text


# ---------------------------------------------------------------------------------------- not a terminal

STAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ", re.M)


def _check(name: str, text: str) -> None:
    check_snapshot(SNAPSHOTS / name, text)


def _normalise(text: str, tmp_path: Path) -> str:
    text = STAMP_RE.sub("<T> ", text)
    text = text.replace(str(tmp_path), "<tmp>")
    text = re.sub(r"tfmh/([\w.-]+):[0-9a-f]{20}", r"tfmh/\1:<hash>", text)
    text = re.sub(r"build-([\w.-]+)-[0-9a-f]{20}\.log", r"build-\1-<hash>.log", text)
    text = re.sub(r"finished in \d+\.\d s", "finished in <secs>", text)
    return re.sub(r"\b\d+(m\d\ds|s)\b", "<dur>", text)


def test_build_output_when_not_a_terminal(tmp_path: Path) -> None:
    matrix, cache, driver = _setup(tmp_path)
    proc = subprocess.run(
        _build_argv(driver, matrix, cache), capture_output=True, text=True, env=_env(), cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and all(STAMP_RE.match(line + "\n") for line in lines)
    assert "noise line" not in proc.stdout
    _check("build-plain.txt", _normalise(proc.stdout, tmp_path))


def test_failed_build_output_when_not_a_terminal(tmp_path: Path) -> None:
    matrix, cache, driver = _setup(tmp_path)
    env = _env(FAKE_BUILD_FAIL="1")
    proc = subprocess.run(
        _build_argv(driver, matrix, cache), capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert proc.returncode == 2
    assert "\x1b" not in proc.stdout + proc.stderr
    assert f"| Step {NOISE_LINES - 1}/{NOISE_LINES} : noise line {NOISE_LINES - 1}" in proc.stdout
    assert "noise line 100\n" not in proc.stdout
    _check("build-failed-plain.txt", _normalise(proc.stdout + proc.stderr, tmp_path))


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def _cells() -> list[Cell]:
    import yaml

    from harness.matrix.config import Matrix

    matrix = Matrix.model_validate(yaml.safe_load(MATRIX))
    return expand(matrix, "tiny").cells


def test_run_progress_when_not_a_terminal() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=80, color_system="truecolor", force_terminal=False)
    clock = Clock()
    cells = _cells()
    with ProgressObserver(console, now=clock, monotonic=clock) as obs:
        obs.phase("build images")
        obs.step("tf2.15-py3.11", "base", "bootstrap:bookworm")
        obs.log("[tf2.15-py3.11] \x1b[1mimporting\x1b[0m something")  # not verbose: not shown
        obs.step("tf2.15-py3.11", "wheels", "1 requirement(s)")
        clock.t += 65
        obs.done(
            "tf2.15-py3.11",
            ImageStatus("tf2.15-py3.11", True, "tfmh/x:1", "sha256:1", built=True),
            1_440_000_000,
        )
        obs.done(
            "tf1.15-py3.6-official",
            ImageStatus(
                "tf1.15-py3.6-official", False, reason="registry unreachable: registry-1.docker.io (no DNS)"
            ),
        )
        obs.note("local interpreter /venv/bin/python: TF 2.15.1, Python 3.11.7, Keras 2.15.0")
        obs.start(3)
        obs.phase("calibration probe", "start")
        unavailable = cells[0].unavailable("registry unreachable: registry-1.docker.io (no DNS)")
        for cell, status in ((unavailable, "unavailable"), (cells[1], "ok"), (cells[2], "failed")):
            job = Job(cell, 0)
            obs.job_started(job)
            clock.t += 12.5 if status != "unavailable" else 0
            record: dict[str, Any] = {"status": status, "reason": None, "wall_s": None, "payload": None}
            if status == "ok":
                record.update(wall_s=12.5, payload={"throughput_samples_per_s": 2345.6})
            elif status == "failed":
                record.update(wall_s=12.5, reason="payload failed (exit code 1): ValueError: boom")
            else:
                record["reason"] = unavailable.reason
            obs.job_finished(job, record)
    out = buf.getvalue()
    assert "\x1b" not in out and "importing" not in out
    assert all(STAMP_RE.match(line + "\n") for line in out.splitlines())
    _check("run-plain.txt", out)


def test_build_display_when_not_a_terminal(tmp_path: Path) -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=80, color_system="truecolor", force_terminal=False)
    clock = Clock()
    with BuildDisplay(console, Path("/cache/logs"), now=clock, monotonic=clock) as display:
        display.images(["a", "b"])
        display.step("a", "base", "bootstrap:bookworm")
        display.log("[a] Get:1 http://deb.debian.org bookworm InRelease")
        display.step("a", "wheels", "1 requirement(s)")
        display.step("a", "build", "tfmh/a:1")
        clock.t += 125
        display.done("a", ImageStatus("a", True, "tfmh/a:1", "sha256:1", built=True), 193_000_000)
        display.done(
            "b", ImageStatus("b", False, reason="registry unreachable: registry-1.docker.io (no DNS)")
        )
    out = buf.getvalue()
    assert "\x1b" not in out and "deb.debian.org" not in out
    assert display.summary() == "1 ready, 1 unavailable"
    _check("build-display-plain.txt", out)


@pytest.mark.parametrize(
    ("raw", "short"),
    [
        (RAW_DNS, "registry-1.docker.io (no DNS)"),
        ("Get https://registry-1.docker.io/v2/: dial tcp: lookup registry-1.docker.io: no such host",
         "registry-1.docker.io (no DNS)"),
        ('Get "https://registry-1.docker.io/v2/": net/http: request canceled while waiting for connection '
         "(Client.Timeout exceeded while awaiting headers)", "registry-1.docker.io (timed out)"),
        ("dial tcp 10.0.0.1:443: connect: network is unreachable", "registry-1.docker.io (network unreachable)"),
        ("pull access denied for tensorflow/tensorflow, repository does not exist or may require 'docker login'",
         "registry-1.docker.io (not found or access denied)"),
        ("something odd", "something odd"),
    ],
)  # fmt: skip
def test_short_engine_reasons(raw: str, short: str) -> None:
    assert short_engine_reason(raw, "tensorflow/tensorflow:1.15.5-gpu-py3") == short


def test_short_build_failure_reason() -> None:
    from harness.execution.docker_backend import build_failure_reason

    exc = BuildError(
        "image tf2.15: build of image tfmh/tf2.15:abc failed: exit code 1\n"
        "  last 2 log lines (/c/logs/build-tf2.15-abc.log):\n  | a\n  | b"
    )
    assert build_failure_reason("tf2.15", exc) == (
        "build of image tfmh/tf2.15:abc failed: exit code 1 (log: /c/logs/build-tf2.15-abc.log)"
    )
    exc = BuildError(
        "image x: debootstrap of base b failed (exit 1); last 30 log lines (/c/logs/b.log):\n  | z"
    )
    assert build_failure_reason("x", exc) == "debootstrap of base b failed (exit 1) (log: /c/logs/b.log)"


def test_plain_output_strips_control_characters() -> None:
    assert strip_control("\x1b[31mred\x1b[0m\rdone\x07") == "reddone"
    assert json.dumps(strip_control("tab\tstays")) == '"tab\\tstays"'
