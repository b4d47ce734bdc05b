"""How a release's dependencies are resolved: as of the TF release's upload (the basis is kept in the lock and
names the lock), sdist-only requirements are found in pip's output and built, and the host's pip evaluates
dependency markers as the image's Python would."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from harness.errors import BuildError
from harness.images.asof import POLICY, Basis, anchor_of, parse_upload_times, policy_for, release_basis
from harness.images.bootstrap import builder_recipe_for
from harness.images.enginespec import ContainerOutcome, ContainerRequest
from harness.images.pipcmd import pip_download_command, pip_env, sdist_download_command, target_pip
from harness.images.sdists import (
    ContainerWheelBuilder,
    build_command,
    is_pure_wheel,
    local_platform,
    unsatisfied_requirement,
    usable_built_wheel,
)
from harness.images.wheelhouse import LockedWheel, WheelLock, lock_key, platform_tags, resolve_lock
from harness.matrix.config import BootstrapBase

PAGE = {
    "files": [
        {"filename": "tensorflow_cpu-2.5.3-cp39-cp39-manylinux2010_x86_64.whl", "upload-time": "2022-02-02T17:03:42.5Z"},
        {"filename": "tensorflow_cpu-2.5.3-cp38-cp38-win_amd64.whl", "upload-time": "2022-02-02T17:09:34.9Z"},
        {"filename": "tensorflow_cpu-2.5.30-cp39-cp39-manylinux2010_x86_64.whl", "upload-time": "2030-01-01T00:00:00Z"},
        {"filename": "tensorflow_cpu-2.6.0-cp39-cp39-manylinux2010_x86_64.whl", "upload-time": "2021-08-11T17:16:27Z"},
        {"filename": "tensorflow_cpu-2.5.3.tar.gz"},
    ]
}  # fmt: skip


def test_anchor_is_the_first_exact_pin():
    assert anchor_of(["tensorflow-cpu==2.5.3", "psutil==5.9"]) == ("tensorflow-cpu", "2.5.3")
    assert anchor_of(["psutil>=5", "tf_nightly == 2.16.0.dev20240101"]) == (
        "tf_nightly",
        "2.16.0.dev20240101",
    )
    assert anchor_of(["tensorflow-cpu>=2.5", "numpy"]) is None
    assert policy_for(["tensorflow-cpu==2.5.3"]) == POLICY and policy_for(["numpy"]) is None


def test_cutoff_is_just_after_the_newest_file_of_the_release():
    times = parse_upload_times(PAGE, "tensorflow-cpu", "2.5.3")
    assert len(times) == 2  # not 2.5.30, not 2.6.0, not the file without a time
    basis = release_basis(["tensorflow-cpu==2.5.3"], lambda url: json.dumps(PAGE).encode())
    assert basis == Basis(POLICY, "tensorflow-cpu==2.5.3", "2022-02-02T17:09:35Z")
    asked: list[str] = []
    release_basis(["TensorFlow_CPU==2.5.3"], lambda url: asked.append(url) or json.dumps(PAGE).encode())
    assert asked[0].endswith("/tensorflow-cpu/")
    assert release_basis(["numpy"], lambda url: b"") is None


def test_cutoff_errors_name_the_release():
    with pytest.raises(BuildError, match=r"tensorflow-cpu==9\.9\.9"):
        release_basis(["tensorflow-cpu==9.9.9"], lambda url: json.dumps(PAGE).encode())

    def offline(url: str) -> bytes:
        raise OSError("no route to host")

    with pytest.raises(BuildError, match="no route to host"):
        release_basis(["tensorflow-cpu==2.5.3"], offline)


def test_lock_records_its_basis_and_its_built_wheels():
    basis = Basis(POLICY, "tensorflow-cpu==2.5.3", "2022-02-02T17:09:35Z")
    built = LockedWheel(
        "wrapt-1.12.1-py3-none-any.whl", "wrapt", "1.12.1", "cc" * 32, "wrapt-1.12.1.tar.gz", "dd" * 32
    )
    lock = WheelLock(("tensorflow-cpu==2.5.3",), "3.9", platform_tags(31), (built,), basis)
    again = WheelLock.from_json(lock.to_json())
    assert again == lock and again.uploaded_prior_to == "2022-02-02T17:09:35Z"
    assert json.loads(lock.to_json())["basis"]["anchor"] == "tensorflow-cpu==2.5.3"
    # the policy names the lock: a lock resolved without it is never taken for one resolved with it
    reqs, platforms = ["tensorflow-cpu==2.5.3"], platform_tags(31)
    assert lock.key == lock_key(reqs, "3.9", platforms, POLICY) != lock_key(reqs, "3.9", platforms)
    old = json.loads(lock.to_json()) | {"lock_version": 1}
    del old["basis"]
    assert WheelLock.from_json(json.dumps(old)).basis is None
    with pytest.raises(ValueError):
        WheelLock.from_json(json.dumps(old | {"lock_version": 99}))


def test_pip_commands_carry_the_cutoff_and_only_the_given_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    cmd = pip_download_command(
        "3.9", ["manylinux2014_x86_64"], tmp_path, tmp_path / "links", ["x"], "2022-01-01T00:00:00Z"
    )
    assert cmd[cmd.index("--uploaded-prior-to") + 1] == "2022-01-01T00:00:00Z"
    assert cmd[cmd.index("--find-links") + 1] == str(tmp_path / "links")
    assert "--only-binary=:all:" in cmd and "--uploaded-prior-to" not in pip_download_command(
        "3.9", [], tmp_path, tmp_path, []
    )
    sdist = sdist_download_command("3.9", tmp_path, "wrapt~=1.12.1", "2022-01-01T00:00:00Z")
    assert "--no-binary=wrapt" in sdist and "--no-deps" in sdist and sdist[-1] == "wrapt~=1.12.1"
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    assert "PIP_FIND_LINKS" not in pip_env() and pip_env()["PIP_NO_INPUT"] == "1"
    assert build_command("wrapt-1.12.1.tar.gz")[-1] == "/in/wrapt-1.12.1.tar.gz"


def test_unsatisfied_requirement_is_read_from_pip_output():
    log = (
        "Collecting six~=1.15.0\n"
        "ERROR: Ignored the following yanked versions: 1.13.0\n"
        "ERROR: Could not find a version that satisfies the requirement wrapt~=1.12.1 (from tensorflow-cpu) "
        "(from versions: 1.13.0rc1, 1.13.3)\n"
        "ERROR: No matching distribution found for wrapt~=1.12.1 (from tensorflow-cpu)\n"
    )
    assert unsatisfied_requirement(log) == "wrapt~=1.12.1"
    assert (
        unsatisfied_requirement("ERROR: Could not find a version that satisfies the requirement jax>=0.3.15")
        == "jax>=0.3.15"
    )
    assert unsatisfied_requirement("ERROR: ResolutionImpossible: conflicting dependencies") is None
    assert is_pure_wheel("termcolor-1.1.0-py3-none-any.whl")
    assert not is_pure_wheel("wrapt-1.14.1-cp39-cp39-linux_x86_64.whl")
    # wrapt 1.14 built without a compiler: tagged for the base's interpreter, and pip must accept linux_x86_64
    assert usable_built_wheel("wrapt-1.14.1-cp311-cp311-linux_x86_64.whl", "3.11")
    assert local_platform("wrapt-1.14.1-cp311-cp311-linux_x86_64.whl") == "linux_x86_64"
    assert local_platform("termcolor-1.1.0-py3-none-any.whl") is None


def _wheel(folder: Path, name: str, requires: list[str]) -> None:
    """A minimal wheel of ``name`` 1.0 with the given Requires-Dist lines."""
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n" + "".join(
        f"Requires-Dist: {r}\n" for r in requires
    )
    wheel = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    with zipfile.ZipFile(folder / f"{name}-1.0-py3-none-any.whl", "w") as zf:
        zf.writestr(f"{name}-1.0.dist-info/METADATA", meta)
        zf.writestr(f"{name}-1.0.dist-info/WHEEL", wheel)
        zf.writestr(f"{name}-1.0.dist-info/RECORD", "")


@pytest.mark.parametrize(("python", "want_backport"), [("3.9", True), ("3.11", False)])
def test_host_pip_evaluates_markers_as_the_target_python(tmp_path: Path, python: str, want_backport: bool):
    links, dest = tmp_path / "links", tmp_path / "dest"
    links.mkdir()
    _wheel(links, "app", ['backport; python_version < "3.10"'])
    _wheel(links, "backport", [])
    cmd = [*target_pip(python), "download", "--no-index", "--find-links", str(links), "--only-binary=:all:"]
    cmd += ["--python-version", python, "--dest", str(dest), "--disable-pip-version-check", "app"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=pip_env(), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = sorted(p.name.split("-")[0] for p in dest.iterdir())
    assert got == (["app", "backport"] if want_backport else ["app"])


BUILDER = builder_recipe_for(BootstrapBase(kind="bootstrap", suite="bullseye"))


class FakeBuildEngine:
    """run_container of a sdist build: writes ``wheel_name`` into the /out mount (or fails)."""

    def __init__(self, wheel_name: str, exit_code: int = 0) -> None:
        self.wheel_name = wheel_name
        self.exit_code = exit_code
        self.requests: list[ContainerRequest] = []

    def image_id(self, tag: str) -> str | None:
        return "sha256:builder" if tag == BUILDER.ref else None

    def run_container(self, req: ContainerRequest, monitor: object = None) -> ContainerOutcome:
        self.requests.append(req)
        out = next(m.source for m in req.mounts if m.target == "/out")
        if self.exit_code == 0:
            (Path(out) / self.wheel_name).write_bytes(b"PK")
        return ContainerOutcome(self.exit_code, False, False, "building wheel\n", 0.0, 1.0, "c1")


def _sdist(tmp_path: Path) -> Path:
    sdist = tmp_path / "src" / "wrapt-1.12.1.tar.gz"
    sdist.parent.mkdir()
    sdist.write_bytes(b"sdist bytes")
    return sdist


def test_sdist_is_built_once_in_the_base_without_network(tmp_path: Path):
    engine = FakeBuildEngine("wrapt-1.12.1-py3-none-any.whl")
    build = ContainerWheelBuilder(engine, BUILDER, tmp_path / "cache", "3.9", print)  # type: ignore[arg-type]
    sdist = _sdist(tmp_path)
    wheel = build(sdist)
    assert wheel.name == "wrapt-1.12.1-py3-none-any.whl" and wheel.is_file()
    assert build(sdist) == wheel and len(engine.requests) == 1  # cached by the sdist's hash
    (req,) = engine.requests
    assert req.image == BUILDER.ref and req.command[-1] == "/in/wrapt-1.12.1.tar.gz"
    assert BUILDER.ref.startswith("tfmh/builder-bullseye:") and "build-essential" in BUILDER.packages
    assert {m.target: m.read_only for m in req.mounts} == {"/in": True, "/out": False}


@pytest.mark.parametrize(
    ("wheel_name", "exit_code", "match"),
    [
        ("wrapt-1.12.1-cp311-cp311-linux_x86_64.whl", 0, "neither pure Python nor for CPython 3.9"),
        ("wrapt-1.12.1-cp39-cp39-manylinux2014_x86_64.whl", 0, "neither pure"),
        ("x.whl", 1, "failed"),
    ],
)
def test_a_failed_or_compiled_sdist_build_is_refused(
    tmp_path: Path, wheel_name: str, exit_code: int, match: str
):
    engine = FakeBuildEngine(wheel_name, exit_code)
    build = ContainerWheelBuilder(engine, BUILDER, tmp_path / "cache", "3.9", print)  # type: ignore[arg-type]
    with pytest.raises(BuildError, match=match):
        build(_sdist(tmp_path))


def test_a_release_the_index_does_not_list_fails_naming_the_image(tmp_path):
    def not_listed(url: str) -> bytes:
        raise OSError("HTTP Error 404: Not Found")

    with pytest.raises(BuildError, match=r"(?s)image nowheel-img: .*tfmh-no-such-package==0\.0\.1.*404"):
        resolve_lock(
            ["tfmh-no-such-package==0.0.1"],
            "3.11",
            ["manylinux_2_17_x86_64"],
            tmp_path,
            image="nowheel-img",
            on_log=lambda _line: None,
            fetch=not_listed,
        )
    assert not list(tmp_path.rglob("*.json"))  # no lock written
