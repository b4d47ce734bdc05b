"""`keras: legacy` images: Keras 2 (the matching tf_keras) on a Keras-3 TF release. The compatibility check
knows which releases have a tf_keras, the plan adds a no-deps lock and a Dockerfile fragment that sets
TF_USE_LEGACY_KERAS=1 (a new content address; other images' tags unchanged), and the local runner asks for
tf_keras in the interpreter."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.execution.interpreters import InterpreterInfo, interpreter_mismatch
from harness.images import imageplan
from harness.images.imageplan import KERAS_LEGACY_DOCKERFILE, build_args_for, content_hash
from harness.images.wheelhouse import LockedWheel, WheelLock, lock_key, platform_tags
from harness.matrix.config import ImageSpec
from harness.matrix.source import load_source
from harness.matrix.testedconfigs import (
    check_image,
    check_matrix_images,
    keras_major,
    legacy_keras_problems,
    load_table,
    tf_keras_requirement,
)
from harness.paths import docker_dir
from tests.unit.test_images import FakeEngine

TABLE = load_table()


def _spec(tf: str = "2.21.0", **kw: Any) -> ImageSpec:
    doc: dict[str, Any] = {
        "name": "img",
        "tf": tf,
        "package": f"tensorflow-cpu=={tf}",
        "python": "3.11",
        "base": {"kind": "bootstrap", "suite": "bookworm"},
    }
    return ImageSpec.model_validate({**doc, **kw})


def test_table_knows_which_releases_have_a_tf_keras() -> None:
    with_tf_keras = {tf for tf, row in TABLE.items() if row.tf_keras}
    assert with_tf_keras == {tf for tf, row in TABLE.items() if row.keras == 3}
    for tf in with_tf_keras:  # a tf_keras release belongs to its TF minor
        assert TABLE[tf].tf_keras is not None and TABLE[tf].tf_keras.startswith(tf + ".")
    assert tf_keras_requirement(_spec(keras="legacy"), TABLE) == f"tf_keras=={TABLE['2.21'].tf_keras}"
    assert tf_keras_requirement(_spec(), TABLE) is None
    assert (keras_major(_spec(), TABLE), keras_major(_spec(keras="legacy"), TABLE)) == (3, 2)
    assert keras_major(_spec("2.15.1"), TABLE) == 2


def test_legacy_on_a_keras_2_release_or_without_tf_keras_is_rejected() -> None:
    assert legacy_keras_problems(_spec(keras="legacy"), TABLE) == []
    (why,) = legacy_keras_problems(_spec("2.15.1", keras="legacy"), TABLE)
    assert "already Keras 2" in why and "2.16" in why
    (unknown,) = legacy_keras_problems(_spec("2.99.0", keras="legacy", allow_untested=True), TABLE)
    assert "no tf_keras release matching TF 2.99" in unknown
    assert check_image(_spec(keras="legacy"), TABLE) == []


def test_allow_untested_does_not_skip_the_legacy_check(tmp_path: Path) -> None:
    spec = _spec("2.15.1", keras="legacy", allow_untested=True)
    with pytest.raises(ConfigError, match=r"images\.img\.keras: legacy") as info:
        check_matrix_images({"img": spec}, TABLE, tmp_path / "matrix.yaml")
    assert "cannot be built" in str(info.value) and "set `allow_untested: true`" not in str(info.value)


def test_a_matrix_asking_legacy_keras_of_tf_2_15_is_refused_before_anything_runs(tmp_path: Path) -> None:
    path = tmp_path / "matrix.yaml"
    path.write_text(
        "version: 1\n"
        "images:\n"
        "  old: {tf: '2.15.1', package: tensorflow-cpu==2.15.1, python: '3.11', keras: legacy,\n"
        "        base: {kind: bootstrap}}\n"
        "workloads: {mlp_loop: {}}\n"
        "profiles: {p: {}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_source(path, "p")
    assert f"{path}: image(s) whose `keras: legacy` cannot be built" in str(info.value)
    assert "images.old.keras: legacy: tf.keras is already Keras 2 in TF 2.15" in str(info.value)


def test_no_deps_locks_have_their_own_key_and_round_trip() -> None:
    plats = platform_tags(36)
    assert lock_key(["tf_keras==2.21.0"], "3.11", plats) != lock_key(
        ["tf_keras==2.21.0"], "3.11", plats, True
    )
    wheel = LockedWheel("tf_keras-2.21.0-py3-none-any.whl", "tf-keras", "2.21.0", "ab" * 32)
    lock = WheelLock(("tf_keras==2.21.0",), "3.11", plats, (wheel,), no_deps=True)
    assert WheelLock.from_json(lock.to_json()) == lock
    plain = WheelLock(("x",), "3.11", plats, ())
    assert "no_deps" not in plain.to_json()  # existing locks read and write as before


def _plan(spec: ImageSpec, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Any, list[Any]]:
    calls: list[Any] = []
    tf = WheelLock(("tensorflow-cpu==2.21.0",), "3.11", platform_tags(36), ())

    def fake_lock(reqs: Any, python: str, plats: Any, cache: Path, **kw: Any) -> WheelLock:
        calls.append((tuple(reqs), kw.get("no_deps", False)))
        if kw.get("no_deps"):
            wheel = LockedWheel("tf_keras-2.21.0-py3-none-any.whl", "tf-keras", "2.21.0", "cd" * 32)
            return WheelLock(tuple(reqs), python, tuple(plats), (wheel,), True)
        return tf

    monkeypatch.setattr(imageplan, "resolve_lock", fake_lock)
    monkeypatch.setattr(imageplan, "ensure_base", lambda *a: ("tfmh/base-bookworm:x", "sha256:b"))
    plan = imageplan.plan_image(spec, FakeEngine({}), tmp_path, print, docker_dir())  # type: ignore[arg-type]
    assert isinstance(plan, imageplan.ImagePlan)
    return plan, calls


def test_plan_adds_the_no_deps_lock_and_fragment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    plain, plain_calls = _plan(_spec(), monkeypatch, tmp_path)
    legacy, legacy_calls = _plan(_spec(keras="legacy"), monkeypatch, tmp_path)
    assert plain_calls == [(("tensorflow-cpu==2.21.0",), False)]
    assert legacy_calls == [*plain_calls, ((f"tf_keras=={TABLE['2.21'].tf_keras}",), True)]
    assert plain.keras_lock is None and legacy.keras_lock is not None
    # a bundled image's address is what it was before the option existed
    boot = (docker_dir() / "bootstrap.Dockerfile").read_text(encoding="utf-8")
    assert plain.dockerfile_text == boot
    assert plain.digest == content_hash(boot, plain.buildargs, plain.base_id, plain.lock.wheel_hashes())
    assert legacy.dockerfile_text.startswith(boot) and "ENV TF_USE_LEGACY_KERAS=1" in legacy.dockerfile_text
    assert legacy.tag != plain.tag


@pytest.mark.parametrize("kind", ["bootstrap", "registry"])
def test_fragment_args_are_passed_and_it_ends_as_the_bench_user(kind: str) -> None:
    fragment = (docker_dir() / KERAS_LEGACY_DOCKERFILE).read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{(\w+)\}", fragment))
    base = {"kind": kind, "image": "tensorflow/tensorflow:2.21.0"} if kind == "registry" else {"kind": kind}
    passed = set(build_args_for(_spec(base=base, keras="legacy"), "ref", "sha256:x"))
    declared = set(re.findall(r"^ARG (\w+)", fragment, flags=re.M))
    assert used <= declared and (declared - {"BENCH_UID"}) <= passed
    code = [line for line in fragment.splitlines() if line.strip() and not line.startswith("#")]
    assert code[-1] == "USER ${BENCH_UID}:${BENCH_UID}"
    assert "--no-deps" in fragment and "--require-hashes" in fragment and "--no-index" in fragment


def test_local_interpreter_needs_tf_keras_for_a_legacy_image() -> None:
    legacy = _spec(keras="legacy")
    assert interpreter_mismatch(InterpreterInfo("p", "3.11.2", "2.21.0", "3.12.0"), _spec()) is None
    why = interpreter_mismatch(InterpreterInfo("p", "3.11.2", "2.21.0", "3.12.0"), legacy)
    assert why is not None and "no tf_keras" in why
    ok = InterpreterInfo("p", "3.11.2", "2.21.0", "3.12.0", tf_keras="2.21.0")
    assert interpreter_mismatch(ok, legacy) is None
    old = InterpreterInfo("p", "3.11.2", "2.21.0", "3.12.0", tf_keras="2.20.1")
    assert interpreter_mismatch(old, legacy) is not None
