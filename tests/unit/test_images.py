"""Pure checks of image planning: content-addressed tags, wheel locks, Dockerfile context, statuses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness import cachedirs
from harness.errors import BuildError
from harness.images import imageplan
from harness.images.asof import policy_for
from harness.images.bootstrap import BaseRecipe, debootstrap_command
from harness.images.build import ensure_images
from harness.images.imageplan import ImageStatus, build_args_for, content_hash, image_tag, requirements_for
from harness.images.wheelhouse import (
    LockedWheel,
    WheelLock,
    link_into,
    lock_key,
    parse_wheel_filename,
    platform_tags,
)
from harness.matrix.config import ImageSpec
from harness.paths import docker_dir

WHEELS = [("a-1.0-py3-none-any.whl", "aa" * 32), ("b-2.0-py3-none-any.whl", "bb" * 32)]


def _spec(**kw: Any) -> ImageSpec:
    doc: dict[str, Any] = {
        "name": "tf2.15-py3.11",
        "tf": "2.15.1",
        "package": "tensorflow-cpu==2.15.1",
        "python": "3.11",
        "base": {"kind": "bootstrap", "suite": "bookworm"},
    }
    return ImageSpec.model_validate({**doc, **kw})


def test_tag_hash_is_stable_and_sensitive_to_every_input():
    h = content_hash("FROM x", {"A": "1"}, "sha256:base", WHEELS)
    assert h == content_hash("FROM x", {"A": "1"}, "sha256:base", list(reversed(WHEELS)))
    others = {
        content_hash("FROM y", {"A": "1"}, "sha256:base", WHEELS),
        content_hash("FROM x", {"A": "2"}, "sha256:base", WHEELS),
        content_hash("FROM x", {"A": "1", "B": ""}, "sha256:base", WHEELS),
        content_hash("FROM x", {"A": "1"}, "sha256:other", WHEELS),
        content_hash("FROM x", {"A": "1"}, "sha256:base", [WHEELS[0], (WHEELS[1][0], "cc" * 32)]),
        content_hash("FROM x", {"A": "1"}, "sha256:base", WHEELS[:1]),
    }
    assert h not in others and len(others) == 6
    assert re.fullmatch(r"tfmh/tf2\.15-py3\.11:[0-9a-f]{20}", image_tag("tf2.15-py3.11", h))


def test_base_recipe_hash_and_command(tmp_path: Path):
    a = BaseRecipe("bookworm", "http://deb.debian.org/debian")
    assert a.digest == BaseRecipe("bookworm", "http://deb.debian.org/debian/").digest
    assert a.digest != BaseRecipe("bullseye", "http://deb.debian.org/debian").digest
    assert a.digest != BaseRecipe("bookworm", "http://mirror.example/debian").digest
    assert a.digest != BaseRecipe("bookworm", "http://deb.debian.org/debian", packages=("python3",)).digest
    assert a.digest != BaseRecipe("bookworm", "http://deb.debian.org/debian", version=99).digest
    assert a.ref == f"tfmh/base-bookworm:{a.digest}"
    cmd = debootstrap_command(a, tmp_path)
    assert cmd[:2] == ["debootstrap", "--variant=minbase"]
    assert "python3-venv" in cmd[2] and "procps" in cmd[2]
    assert cmd[-3:] == ["bookworm", str(tmp_path), "http://deb.debian.org/debian"]


def test_platform_tags_enumerate_every_glibc():
    tags = platform_tags(36)
    assert tags[0] == "manylinux_2_36_x86_64"
    assert "manylinux_2_17_x86_64" in tags and "manylinux_2_5_x86_64" in tags
    assert {"manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"} <= set(tags)
    assert "manylinux_2_32_x86_64" not in platform_tags(31)
    assert len(platform_tags(36)) == 32 + 3


def test_parse_wheel_filename():
    assert parse_wheel_filename("tensorflow_cpu-2.15.1-cp311-cp311-manylinux_2_17_x86_64.whl") == (
        "tensorflow-cpu",
        "2.15.1",
    )
    assert parse_wheel_filename("certifi-2026.10.19.post1-py3-none-any.whl")[1] == "2026.10.19.post1"
    with pytest.raises(ValueError):
        parse_wheel_filename("foo.tar.gz")


def test_lock_roundtrip_and_requirements_txt():
    lock = WheelLock(
        ("tensorflow-cpu==2.15.1",),
        "3.11",
        platform_tags(36),
        (
            LockedWheel("b-2.0-py3-none-any.whl", "b", "2.0", "bb" * 32),
            LockedWheel(*WHEELS[0][:1], "a", "1.0", "aa" * 32),
        ),
    )
    assert WheelLock.from_json(lock.to_json()) == WheelLock(
        lock.requirements, lock.python, lock.platforms, tuple(sorted(lock.wheels, key=lambda w: w.name))
    )
    assert lock.requirements_txt() == f"a==1.0 --hash=sha256:{'aa' * 32}\nb==2.0 --hash=sha256:{'bb' * 32}\n"
    pinned = ["tensorflow-cpu==2.15.1"]  # an exact pin: resolved as of its release, named by that policy
    assert lock.key == lock_key(pinned, "3.11", list(reversed(platform_tags(36))), policy_for(pinned))


def test_link_into_builds_the_context_wheel_dir(tmp_path: Path):
    cache = tmp_path / "cache"
    wdir = cachedirs.wheelhouse(cache, "3.11")
    wdir.mkdir(parents=True)
    (wdir / "a-1.0-py3-none-any.whl").write_bytes(b"A")
    (wdir / "unrelated-9-py3-none-any.whl").write_bytes(b"Z")
    lock = WheelLock(("a",), "3.11", (), (LockedWheel("a-1.0-py3-none-any.whl", "a", "1.0", "aa" * 32),))
    link_into(lock, cache, tmp_path / "ctx" / "wheels")
    assert sorted(p.name for p in (tmp_path / "ctx" / "wheels").iterdir()) == [
        "a-1.0-py3-none-any.whl",
        "lock.txt",
    ]


def test_dockerfiles_are_parametrised_and_do_not_bake_the_payload():
    ddir = docker_dir()
    boot = (ddir / "bootstrap.Dockerfile").read_text()
    reg = (ddir / "registry.Dockerfile").read_text()
    for text in (boot, reg):
        assert text.lstrip().startswith("#")
        assert "ARG BASE_IMAGE" in text and "FROM ${BASE_IMAGE}" in text
        assert "--require-hashes" in text and "--no-index" in text
        assert "USER ${BENCH_UID}:${BENCH_UID}" in text
        assert "payload" not in "".join(line for line in text.splitlines() if line.startswith("COPY"))
        code = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        assert not any("--mount" in line for line in code)  # classic builder: no BuildKit mounts
    assert "COPY --from=venv /opt/venv /opt/venv" in boot


@pytest.mark.parametrize("dockerfile", ["bootstrap.Dockerfile", "registry.Dockerfile"])
def test_every_build_arg_is_declared_and_every_used_arg_is_passed(dockerfile: str):
    text = (docker_dir() / dockerfile).read_text()
    declared = set(re.findall(r"^ARG (\w+)", text, flags=re.M))
    used = set(re.findall(r"\$\{(\w+)\}", text))
    kind = "registry" if dockerfile.startswith("registry") else "bootstrap"
    base = {"kind": kind, "image": "tensorflow/tensorflow:2.15.0"} if kind == "registry" else {"kind": kind}
    passed = set(build_args_for(_spec(base=base), "ref", "sha256:x", {"BUILD_NOTE": "n"}))
    assert passed <= declared, passed - declared  # nothing passed goes unconsumed
    assert used <= declared, used - declared
    assert 'tfmh="1"' in text  # the harness label is set by the Dockerfile itself


def test_build_args_and_requirements():
    spec = _spec(extra_packages=["psutil==5.9.8"])
    args = build_args_for(spec, "tfmh/base-bookworm:abc", "sha256:b", {"BUILD_NOTE": "x"})
    assert args["BASE_IMAGE"] == "tfmh/base-bookworm:abc" and args["BASE_ID"] == "sha256:b"
    assert args["BASE_DESC"] == "bootstrap:bookworm" and args["CUDA"] == ""
    assert args["TF_PACKAGE"] == "tensorflow-cpu==2.15.1" and args["BUILD_NOTE"] == "x"
    assert requirements_for(spec) == ["tensorflow-cpu==2.15.1", "psutil==5.9.8"]
    reg = _spec(base={"kind": "registry", "image": "tensorflow/tensorflow:2.15.0"}, extra_packages=["psutil"])
    assert requirements_for(reg) == ["psutil"]
    assert (
        build_args_for(reg, "tensorflow/tensorflow:2.15.0", "sha256:r")["BASE_DESC"]
        == "tensorflow/tensorflow:2.15.0"
    )


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TFMH_CACHE_DIR", str(tmp_path))
    assert cachedirs.default_root() == tmp_path
    monkeypatch.delenv("TFMH_CACHE_DIR")
    assert cachedirs.default_root() == Path.home() / ".cache" / "tf-matrix-harness"


class FakeEngine:
    """Just enough of DockerEngine for planning: knows some tags, registry is unreachable."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known
        self.builds: list[str] = []
        self.pulls: list[str] = []

    def image_id(self, tag: str) -> str | None:
        return self.known.get(tag)

    def registry_pull(self, ref: str, timeout_s: float = 60.0) -> tuple[bool, str]:
        self.pulls.append(ref)
        return (
            False,
            "Get https://registry-1.docker.io/v2/: dial tcp: lookup registry-1.docker.io: no such host",
        )

    def prune_dangling_images(self, label_filter: dict[str, str]) -> int:
        return 0

    def build(self, *args: Any, **kwargs: Any) -> str:
        self.builds.append(args[2])
        return "sha256:new"


def test_registry_unreachable_is_reported_not_dropped_and_others_continue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    reg = _spec(
        name="tf1.15-gpu",
        tf="1.15.5",
        python="3.6",
        base={"kind": "registry", "image": "tensorflow/tensorflow:1.15.5-gpu-py3"},
    )
    boot = _spec()
    monkeypatch.setattr(
        imageplan, "ensure_base", lambda base, engine, cache, log: ("tfmh/base-bookworm:x", "sha256:b")
    )
    lock = WheelLock(("tensorflow-cpu==2.15.1",), "3.11", platform_tags(36), ())
    monkeypatch.setattr(imageplan, "resolve_lock", lambda *a, **k: lock)
    engine = FakeEngine({})
    plan = imageplan.plan_image(boot, engine, tmp_path, print, docker_dir())  # type: ignore[arg-type]
    assert isinstance(plan, imageplan.ImagePlan)
    engine.known[plan.tag] = "sha256:built"
    statuses = ensure_images([reg, boot], engine, tmp_path, print)  # type: ignore[arg-type]
    assert statuses["tf1.15-gpu"] == ImageStatus(
        "tf1.15-gpu",
        False,
        reason="registry unreachable: registry-1.docker.io (no DNS)",
        detail=engine.registry_pull("x")[1],
    )
    assert statuses["tf2.15-py3.11"].available and statuses["tf2.15-py3.11"].tag == plan.tag
    assert statuses["tf2.15-py3.11"].image_id == "sha256:built" and not statuses["tf2.15-py3.11"].built
    assert engine.builds == []  # cache hit: nothing built


def test_bootstrap_python_mismatch_is_a_build_error(tmp_path: Path):
    spec = _spec(python="3.9")
    with pytest.raises(BuildError, match=r"image tf2\.15-py3\.11: python 3\.9 .* bookworm .* 3\.11"):
        imageplan.plan_image(spec, FakeEngine({}), tmp_path, print, docker_dir())  # type: ignore[arg-type]
