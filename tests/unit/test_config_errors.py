"""Malformed matrix files: each gets a clear message naming the file, the line, the field and what was
expected, and the CLI exits 2 without writing anything."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.matrix.config import load_matrix
from harness.matrix.plan import expand

GOOD = textwrap.dedent(
    """\
    version: 1
    images:
      tf2.15-py3.11:
        tf: "2.15.1"
        package: tensorflow-cpu==2.15.1
        python: "3.11"
        base: {kind: bootstrap, suite: bookworm}
        devices: [cpu]
    workloads:
      mlp_fit:
        params: {input: [numpy, tfdata]}
    profiles:
      ci:
        repeats: 2
    """
)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "matrix.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _replace(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


# (id, matrix text, substrings the message must contain)
CASES = [
    ("not-yaml", "version: 1\nimages: [unclosed\n", ["matrix.yaml:", "not valid YAML"]),
    ("top-level-list", "- a\n- b\n", ["matrix.yaml:1", "expected a mapping"]),
    ("empty-file", "", ["expected a mapping"]),
    ("unknown-top-key", GOOD + "extra: 1\n", ["matrix.yaml:15", "extra", "unknown key"]),
    ("wrong-version", _replace("version: 1", "version: 2"), ["matrix.yaml:1", "version", "1"]),
    (
        "missing-images",
        GOOD.replace(GOOD[GOOD.index("images:") : GOOD.index("workloads:")], ""),
        ["images", "required field is missing"],
    ),
    (
        "unknown-image-key",
        _replace("    devices: [cpu]", "    devices: [cpu]\n    gpus: 2"),
        ["matrix.yaml:9", "images.tf2.15-py3.11.gpus", "unknown key"],
    ),
    (
        "bad-tf-version",
        _replace('tf: "2.15.1"', 'tf: "two"'),
        ["matrix.yaml:4", "images.tf2.15-py3.11.tf", "expected a string matching", "got 'two'"],
    ),
    ("bad-python", _replace('python: "3.11"', 'python: "python3"'), ["matrix.yaml:6", "python"]),
    (
        "bad-device",
        _replace("devices: [cpu]", "devices: [tpu]"),
        ["matrix.yaml:8", "devices.0", "'cpu' or 'gpu'"],
    ),
    ("empty-devices", _replace("devices: [cpu]", "devices: []"), ["devices", "at least 1"]),
    (
        "bad-base-kind",
        _replace("kind: bootstrap", "kind: ftp"),
        ["matrix.yaml:7", "base", "bootstrap", "registry"],
    ),
    ("bad-suite", _replace("suite: bookworm", "suite: jessie"), ["base", "suite", "bookworm", "bullseye"]),
    (
        "registry-without-image",
        _replace("{kind: bootstrap, suite: bookworm}", "{kind: registry}"),
        ["matrix.yaml:7", "images.tf2.15-py3.11.base.image", "required field is missing"],
    ),
    (
        "unknown-workload",
        _replace("  mlp_fit:\n", "  resnet:\n"),
        [
            "matrix.yaml:10",
            "workloads.resnet:",
            "'mlp_fit', 'mlp_loop', 'cnn_fit', 'tiny_fit' or 'call_overhead'",
        ],
    ),
    (
        "unknown-param",
        _replace("{input: [numpy, tfdata]}", "{inputs: [numpy]}"),
        ["matrix.yaml:11", "workloads.mlp_fit.params", "unknown parameter", "inputs"],
    ),
    (
        "repeats-zero",
        _replace("repeats: 2", "repeats: 0"),
        ["matrix.yaml:14", "profiles.ci.repeats", "greater than or equal to 1"],
    ),
    ("repeats-string", _replace("repeats: 2", "repeats: many"), ["profiles.ci.repeats", "integer"]),
    (
        "profile-unknown-image",
        _replace("repeats: 2", "repeats: 2\n    images: [tf9.9]"),
        ["profiles.ci.images", "'tf9.9' is not an image"],
    ),
    ("bad-baseline", "baseline: nope\n" + GOOD, ["baseline", "'nope' is not an image"]),
    (
        "bad-image-name",
        _replace("  tf2.15-py3.11:", "  TF 2.15!:"),
        ["matrix.yaml:3", "images.TF 2.15!:", "expected a string matching", "got 'TF 2.15!'"],
    ),
    (
        "bad-mem-limit",
        _replace("repeats: 2", "repeats: 2\n    mem_limit: lots"),
        ["profiles.ci.mem_limit", "expected a string matching", "got 'lots'"],
    ),
    (
        "negative-timeout",
        _replace("repeats: 2", "repeats: 2\n    timeout_s: -1"),
        ["profiles.ci.timeout_s", "greater than 0"],
    ),
    (
        "python-object-tag",
        "version: !!python/object/apply:os.system ['true']\n",
        ["matrix.yaml:1", "is not allowed"],
    ),
]


def _profile(extra: str) -> str:
    """GOOD with `extra` (indented lines) added to profile ci."""
    return _replace("    repeats: 2\n", "    repeats: 2\n" + textwrap.indent(textwrap.dedent(extra), "    "))


def _params(params: str) -> str:
    return _replace("{input: [numpy, tfdata]}", params)


INCLUDE = "{image: tf2.15-py3.11, device: cpu, workload: mlp_fit"


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The billion laughs: each level lists the previous one `width` times (9^9 nodes expanded)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return GOOD + "\n".join(lines) + "\n"


def deep_nesting(levels: int) -> str:
    return GOOD.replace("version: 1\n", "version: 1\nx: " + "[" * levels + "]" * levels + "\n")


def big_file(megabytes: int) -> str:
    return GOOD + ("# " + "x" * 1022 + "\n") * (megabytes * 1024)


def many_cells(per_axis: int = 1000) -> str:
    """A small file whose ci profile expands to per_axis^2 cells (10^6 by default)."""
    sizes = ", ".join(str(i) for i in range(1, per_axis + 1))
    seeds = ", ".join(str(i) for i in range(per_axis))
    return _params(f"{{batch_size: [{sizes}], seed: [{seeds}]}}")


# (id, matrix text or bytes, substrings the message must contain, environment)
MORE_CASES: list[tuple[str, str | bytes, list[str], dict[str, str]]] = [
    # --- limits and encodings, before any YAML is built
    ("alias-bomb", alias_bomb(), ["matrix.yaml:", "expands to more than 20000 nodes"], {}),
    ("alias-bomb-wide", alias_bomb(4, 400), ["expands to more than"], {}),
    ("deep-nesting-1e5", deep_nesting(100_000), ["matrix.yaml:2", "nesting"], {}),
    ("deep-nesting-40", deep_nesting(40), ["matrix.yaml:2", "nesting deeper than 32 levels"], {}),
    (
        "deep-block-nesting",
        GOOD + "x:\n" + "".join("  " * i + "- \n" for i in range(1, 40)),
        ["nesting deeper than 32 levels"],
        {},
    ),
    ("file-too-big", big_file(2), ["larger than 1048576 bytes", "TFMH_MAX_MATRIX_BYTES"], {}),
    ("size-limit-env", GOOD, ["larger than 100 bytes"], {"TFMH_MAX_MATRIX_BYTES": "100"}),
    (
        "size-limit-env-bad",
        GOOD,
        ["TFMH_MAX_MATRIX_BYTES", "expected a positive integer"],
        {"TFMH_MAX_MATRIX_BYTES": "1MB"},
    ),
    (
        "latin-1",
        GOOD.replace("    repeats: 2", "    description: caf\xe9\n    repeats: 2").encode("latin-1"),
        ["matrix.yaml:14", "byte 0xe9 is not UTF-8", "expected UTF-8"],
        {},
    ),
    ("utf-16-bom", GOOD.encode("utf-16"), ["matrix.yaml:1", "UTF-16", "expected UTF-8"], {}),
    ("utf-16-no-bom", GOOD.encode("utf-16-le"), ["matrix.yaml:1", "NUL byte", "expected UTF-8"], {}),
    ("control-char", _replace("repeats: 2", "repeats: 2\x07"), ["matrix.yaml:14", "control characters"], {}),
    # --- YAML the loader refuses
    (
        "duplicate-top-key",
        GOOD + "version: 1\n",
        ["matrix.yaml:15", "duplicate key 'version'", "first at line 1"],
        {},
    ),
    (
        "duplicate-image",
        GOOD.replace("workloads:\n", "  tf2.15-py3.11: {}\nworkloads:\n"),
        ["matrix.yaml:9", "duplicate key 'tf2.15-py3.11'"],
        {},
    ),
    (
        "duplicate-param",
        _params("{input: [numpy], input: [tfdata]}"),
        ["matrix.yaml:11", "duplicate key 'input'"],
        {},
    ),
    ("duplicate-profile-key", _profile("repeats: 3\n"), ["matrix.yaml:15", "duplicate key 'repeats'"], {}),
    ("two-documents", GOOD + "---\nversion: 1\n", ["matrix.yaml:15", "second YAML document"], {}),
    ("recursive-alias", GOOD + "x: &x [*x]\n", ["matrix.yaml:15", "no finished anchor"], {}),
    ("undefined-alias", _replace("repeats: 2", "repeats: *nope"), ["matrix.yaml:14", "*nope"], {}),
    ("complex-key", GOOD + "? [a, b]\n: 1\n", ["matrix.yaml:15", "mapping key must be a plain value"], {}),
    (
        "binary-tag",
        _replace("repeats: 2", "repeats: !!binary aGk="),
        ["matrix.yaml:14", "binary is not allowed"],
        {},
    ),
    (
        "custom-tag",
        _replace("repeats: 2", "repeats: !lots 2"),
        ["matrix.yaml:14", "!lots is not allowed"],
        {},
    ),
    (
        "set-tag",
        _replace("devices: [cpu]", "devices: !!set {cpu}"),
        ["matrix.yaml:8", "set is not allowed"],
        {},
    ),
    ("merge-of-scalar", GOOD + "x: {<<: 1}\n", ["matrix.yaml:15", "merge needs a mapping"], {}),
    (
        "huge-integer",
        _profile("params: {seed: " + "9" * 5000 + "}\n"),
        ["matrix.yaml:15", "is not a valid int"],
        {},
    ),
    # --- parameters: one table of types and bounds, everywhere
    (
        "defaults-epochs-text",
        GOOD + "defaults: {epochs: lots}\n",
        ["matrix.yaml:15", "defaults.epochs", "an integer from 1 to 10000", "got 'lots'"],
        {},
    ),
    (
        "workload-seed-text",
        _params("{input: [numpy], seed: lots}"),
        ["matrix.yaml:11", "workloads.mlp_fit.params.seed", "got 'lots'"],
        {},
    ),
    (
        "profile-threads-text",
        _profile("params: {intra_op_threads: lots}\n"),
        ["matrix.yaml:15", "profiles.ci.params.intra_op_threads", "from 0 to 1024"],
        {},
    ),
    (
        "batch-size-zero",
        _params("{batch_size: 0}"),
        ["workloads.mlp_fit.params.batch_size", "from 1 to 65536", "got 0"],
        {},
    ),
    (
        "batch-size-axis-negative",
        _params("{batch_size: [32, -1]}"),
        ["workloads.mlp_fit.params.batch_size.1", "got -1"],
        {},
    ),
    ("batch-size-float", _params("{batch_size: 32.5}"), ["batch_size", "got 32.5"], {}),
    ("batch-size-bool", _params("{batch_size: true}"), ["batch_size", "got True"], {}),
    ("batch-size-quoted", _params('{batch_size: "32"}'), ["batch_size", "got '32'"], {}),
    ("batch-size-huge", _params("{batch_size: 10000000}"), ["batch_size", "from 1 to 65536"], {}),
    (
        "empty-axis",
        _params("{input: []}"),
        ["matrix.yaml:11", "workloads.mlp_fit.params.input", "at least one value"],
        {},
    ),
    ("repeated-axis-value", _params("{input: [numpy, numpy]}"), ["params.input.1", "listed twice"], {}),
    ("bad-choice", _params("{input: pandas}"), ["params.input", "'numpy' or 'tfdata'", "got 'pandas'"], {}),
    (
        "mode-on-fit",
        _params("{mode: graph}"),
        ["workloads.mlp_fit.params.mode", "applies only to mlp_loop"],
        {},
    ),
    ("param-mapping", _params("{epochs: {a: 1}}"), ["params.epochs", "got a mapping"], {}),
    ("param-nested-list", _params("{epochs: [[1]]}"), ["params.epochs.0", "got [1]"], {}),
    (
        "axis-too-long",
        _params("{seed: [" + ", ".join(str(i) for i in range(1001)) + "]}"),
        ["params.seed", "at most 1000"],
        {},
    ),
    ("steps-per-epoch-zero", _profile("params: {steps_per_epoch: 0}\n"), ["steps_per_epoch", "or null"], {}),
    ("data-unknown", GOOD + "defaults: {data: imagenet}\n", ["defaults.data", "'synthetic' or 'mnist'"], {}),
    ("warmup-negative", GOOD + "defaults: {warmup_steps: -5}\n", ["defaults.warmup_steps", "from 0 to"], {}),
    (
        "profile-unknown-param",
        _profile("params: {colour: red}\n"),
        ["matrix.yaml:15", "profiles.ci.params.colour", "unknown parameter"],
        {},
    ),
    ("defaults-not-mapping", GOOD + "defaults: [1, 2]\n", ["matrix.yaml:15", "defaults", "dictionary"], {}),
    # --- include / exclude: only declared axes, images, devices and workloads
    (
        "include-unknown-axis",
        _profile(f"include: [{INCLUDE}, colour: red}}]\n"),
        ["matrix.yaml:15", "profiles.ci.include.0.colour", "unknown key 'colour'"],
        {},
    ),
    (
        "include-unknown-device",
        _profile("include: [{image: tf2.15-py3.11, device: tpu, workload: mlp_fit}]\n"),
        ["include.0.device", "'cpu' or 'gpu'", "got 'tpu'"],
        {},
    ),
    (
        "include-undeclared-device",
        _profile("include: [{image: tf2.15-py3.11, device: gpu, workload: mlp_fit}]\n"),
        ["include.0.device", "declares devices ['cpu'], not 'gpu'"],
        {},
    ),
    (
        "include-unknown-image",
        _profile("include: [{image: tf9, device: cpu, workload: mlp_fit}]\n"),
        ["include.0.image", "'tf9' is not an image"],
        {},
    ),
    (
        "include-missing-keys",
        _profile("include: [{image: tf2.15-py3.11}]\n"),
        ["profiles.ci.include.0", "needs keys device, workload"],
        {},
    ),
    (
        "include-undeclared-workload",
        _profile("include: [{image: tf2.15-py3.11, device: cpu, workload: mlp_loop}]\n"),
        ["include.0.workload", "'mlp_loop' is not declared under workloads"],
        {},
    ),
    (
        "include-bad-param",
        _profile(f"include: [{INCLUDE}, batch_size: 0}}]\n"),
        ["include.0.batch_size", "got 0"],
        {},
    ),
    (
        "include-param-of-another-workload",
        _profile(f"include: [{INCLUDE}, mode: graph}}]\n"),
        ["include.0.mode", "applies only to mlp_loop, not mlp_fit"],
        {},
    ),
    (
        "exclude-param-of-another-workload",
        _profile("exclude: [{workload: mlp_fit, mode: eager}]\n"),
        ["exclude.0.mode", "applies only to mlp_loop, not mlp_fit"],
        {},
    ),
    (
        "exclude-unknown-axis",
        _profile("exclude: [{colour: red}]\n"),
        ["matrix.yaml:15", "exclude.0.colour", "unknown key"],
        {},
    ),
    ("exclude-empty", _profile("exclude: [{}]\n"), ["exclude.0", "would match every cell"], {}),
    (
        "exclude-everything",
        _profile("exclude: [{workload: mlp_fit}]\n"),
        ["matrix.yaml:13", "profiles.ci", "every cell is excluded"],
        {},
    ),
    (
        "exclude-list-value",
        _profile("exclude: [{input: [numpy]}]\n"),
        ["exclude.0.input", "one value per key"],
        {},
    ),
    (
        "exclude-unknown-image",
        _profile("exclude: [{image: tf9}]\n"),
        ["exclude.0.image", "'tf9' is not an image"],
        {},
    ),
    # --- profiles must select something sensible
    ("profile-empty-images", _profile("images: []\n"), ["profiles.ci.images", "at least 1"], {}),
    (
        "profile-no-device",
        _profile("devices: [gpu]\n"),
        ["matrix.yaml:13", "profiles.ci", "selects no cells"],
        {},
    ),
    (
        "profile-undeclared-workload",
        _profile("workloads: [mlp_loop]\n"),
        ["matrix.yaml:15", "profiles.ci.workloads.0", "not declared under workloads"],
        {},
    ),
    (
        "profile-unknown-image-line",
        _profile("images:\n  - tf2.15-py3.11\n  - tf9.9\n"),
        ["matrix.yaml:17", "profiles.ci.images.1", "'tf9.9' is not an image"],
        {},
    ),
    ("million-cells", many_cells(), ["matrix.yaml:13", "selects 1,000,000 cells", "limit of 10,000"], {}),
    (
        "cells-over-env-limit",
        GOOD,
        ["selects 2 cells", "limit of 1", "TFMH_MAX_CELLS"],
        {"TFMH_MAX_CELLS": "1"},
    ),
    ("cells-env-bad", GOOD, ["TFMH_MAX_CELLS", "expected a positive integer"], {"TFMH_MAX_CELLS": "lots"}),
    (
        "timeout-absurd",
        _profile("timeout_s: 1000000000\n"),
        ["profiles.ci.timeout_s", "less than or equal to 604800"],
        {},
    ),
    ("timeout-inf", _profile("timeout_s: .inf\n"), ["profiles.ci.timeout_s"], {}),
    ("timeout-text", _profile("timeout_s: forever\n"), ["profiles.ci.timeout_s", "number"], {}),
    ("cpus-absurd", _profile("cpus: 100000\n"), ["profiles.ci.cpus", "less than or equal to 1024"], {}),
    ("budget-text", _profile("budget: forever\n"), ["profiles.ci.budget", "not a duration"], {}),
    ("cpuset-backwards", _profile("cpuset: 3-1\n"), ["profiles.ci.cpuset", "runs backwards"], {}),
    (
        "repeats-too-many",
        _replace("repeats: 2", "repeats: 101"),
        ["matrix.yaml:14", "profiles.ci.repeats", "less than or equal to 100"],
        {},
    ),
    (
        "quiet-threshold",
        _profile("quiet: {threshold: 2}\n"),
        ["profiles.ci.quiet.threshold", "less than or equal to 1"],
        {},
    ),
    (
        "mem-limit-huge",
        _profile("mem_limit: 9999999999999999999g\n"),
        ["profiles.ci.mem_limit", "expected a string matching"],
        {},
    ),
    ("no-profiles", GOOD[: GOOD.index("profiles:")] + "profiles: {}\n", ["profiles", "at least 1"], {}),
    (
        "no-images",
        _replace(GOOD[GOOD.index("images:") : GOOD.index("workloads:")], "images: {}\n"),
        ["images", "at least 1"],
        {},
    ),
    ("version-string", _replace("version: 1", 'version: "1"'), ["matrix.yaml:1", "version"], {}),
]


ALL_CASES = [(c[0], c[1], c[2], {}) for c in CASES] + MORE_CASES


def _write_any(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "matrix.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected", "env"), [c[1:] for c in ALL_CASES], ids=[c[0] for c in ALL_CASES]
)
def test_malformed_matrix_message(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    text: str | bytes,
    expected: list[str],
    env: dict[str, str],
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = _write_any(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_matrix(path)
        expand(load_matrix(path), "ci", str(path))
    message = str(info.value)
    if not env or "positive integer" not in message:  # a bad limit names the variable, not the file
        assert str(path) in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


@pytest.mark.parametrize(
    ("text", "expected", "env"), [c[1:] for c in ALL_CASES], ids=[c[0] for c in ALL_CASES]
)
def test_malformed_matrix_cli(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str | bytes,
    expected: list[str],
    env: dict[str, str],
) -> None:
    """`harness plan`: exit 2, the message on stderr, no traceback, nothing written, within the limits."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = _write_any(tmp_path, text)
    started = time.monotonic()
    code = main(["plan", "--offline", "--matrix", str(path), "--profile", "ci"])
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    assert code == 2, out
    assert "Traceback" not in err and "Traceback" not in out
    assert err.startswith("error: ")
    flat = " ".join(err.split())
    for fragment in expected:
        assert " ".join(fragment.split()) in flat, f"{fragment!r} not in:\n{err}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matrix.yaml"]
    assert elapsed < 2.0, f"took {elapsed:.2f} s"


def test_good_matrix_loads(tmp_path: Path) -> None:
    matrix = load_matrix(_write(tmp_path, GOOD))
    assert matrix.images["tf2.15-py3.11"].name == "tf2.15-py3.11"
    assert matrix.images["tf2.15-py3.11"].tf_minor == "2.15"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read matrix file"):
        load_matrix(tmp_path / "nope.yaml")


@pytest.mark.parametrize("command", ["plan", "build", "run"])
def test_cli_exits_2_and_writes_nothing(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, _replace("repeats: 2", "repeats: 0"))
    results = tmp_path / "results"
    extra = ["--results-dir", str(results)] if command == "run" else []
    code = main([command, "--matrix", str(path), "--profile", "ci", *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert "profiles.ci.repeats" in err
    assert not results.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matrix.yaml"]


def test_compat_mismatch_rejected_before_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, _replace('python: "3.11"', 'python: "3.12"'))
    code = main(["build", "--matrix", str(path), "--profile", "ci"])
    assert code == 2
    err = capsys.readouterr().err
    assert "images.tf2.15-py3.11.python" in err and "3.9 to 3.11" in err and "allow_untested" in err


def test_compat_opt_out_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _replace('python: "3.11"', 'python: "3.12"').replace(
        "    devices: [cpu]", "    devices: [cpu]\n    allow_untested: true"
    )
    path = _write(tmp_path, text)
    assert main(["plan", "--offline", "--matrix", str(path), "--profile", "ci", "--format", "json"]) == 0
    assert "tf2.15-py3.11-cpu/mlp_fit-numpy/bs32" in capsys.readouterr().out


def test_unknown_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, GOOD)
    assert main(["plan", "--offline", "--matrix", str(path), "--profile", "nightly"]) == 2
    assert "profiles.nightly: no such profile (have: ci)" in capsys.readouterr().err


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = _write_any(tmp_path, b"\xef\xbb\xbf" + GOOD.encode("utf-8"))
    assert load_matrix(path).images["tf2.15-py3.11"].tf == "2.15.1"


def test_anchors_and_merge_keys_within_budget(tmp_path: Path) -> None:
    text = GOOD.replace(
        "profiles:\n  ci:\n    repeats: 2\n",
        "profiles:\n  ci: &ci\n    repeats: 2\n  ci2:\n    <<: *ci\n    repeats: 3\n",
    )
    matrix = load_matrix(_write_any(tmp_path, text))
    assert matrix.profiles["ci2"].repeats == 3 and matrix.profiles["ci"].repeats == 2


def test_real_matrix_loads(root: Path) -> None:
    matrix = load_matrix(root / "matrix.yaml")
    assert {len(expand(matrix, p).cells) > 0 for p in matrix.profiles} == {True}


MEASURE = """
import resource, sys, time
from harness.cli import main
started = time.monotonic()
code = main(["plan", "--offline", "--matrix", sys.argv[1], "--profile", "ci"])
hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
print(code, time.monotonic() - started, hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.parametrize(
    "make",
    [alias_bomb, lambda: deep_nesting(100_000), lambda: big_file(50), many_cells],
    ids=["alias-bomb", "deep-nesting-1e5", "file-50MB", "cells-1e6"],
)
def test_hostile_inputs_answer_fast_and_small(tmp_path: Path, make: Any) -> None:
    """Each answers exit 2 within 2 s (after the interpreter started) and under 200 MB peak RSS (VmHWM:
    ru_maxrss would include the forked pytest process)."""
    path = _write_any(tmp_path, make())
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    code, elapsed, rss_kb = proc.stdout.split()
    assert int(code) == 2 and proc.stderr.startswith("error: ")
    assert float(elapsed) < 2.0
    assert int(rss_kb) < 200 * 1024
