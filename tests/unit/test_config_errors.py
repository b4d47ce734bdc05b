"""Malformed matrix files: each gets a clear message naming the file, the line, the field and what was
expected, and the CLI exits 2 without writing anything."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.cli import main
from harness.config import load_matrix
from harness.errors import ConfigError

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
        ["matrix.yaml:10", "workloads.resnet:", "'mlp_fit', 'mlp_loop' or 'cnn_fit'"],
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
    ("python-object-tag", "version: !!python/object/apply:os.system ['true']\n", ["not valid YAML"]),
]


@pytest.mark.parametrize(("text", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_matrix_message(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_matrix(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


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
