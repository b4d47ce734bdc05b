"""`harness images` and `harness images prune` against a fake engine (the ImageEngine interface): only
``tfmh/`` tags with the harness label are listed, "last used" comes from the cache's use index, and prune
removes exactly what the matrix no longer produces (never a foreign image, never an image whose current tag
cannot be known here)."""

from __future__ import annotations

import io
import json
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
from rich.console import Console

from harness.errors import EngineError
from harness.execution.imagestore import list_images, prune_images
from harness.images.asof import POLICY, Basis
from harness.images.bootstrap import recipe_for
from harness.images.enginespec import ImageInfo
from harness.images.imageplan import known_plan
from harness.images.inventory import read_uses, record_use
from harness.images.wheelhouse import WheelLock, lock_key, lock_path, platform_tags
from harness.matrix.config import load_matrix
from harness.paths import docker_dir
from harness.report.imagelist import print_images, print_prune

MATRIX = textwrap.dedent(
    """\
    version: 1
    images:
      tf2.11-py3.9: {tf: "2.11.1", package: tensorflow-cpu==2.11.1, python: "3.9", base: {kind: bootstrap, suite: bullseye}}
      tf2.21-py3.11: {tf: "2.21.0", package: tensorflow-cpu==2.21.0, python: "3.11", base: {kind: bootstrap}}
    workloads:
      mlp_fit: {params: {input: numpy}}
    profiles:
      tiny: {repeats: 1}
    """
)  # fmt: skip
BASIS = Basis(POLICY, "tensorflow-cpu==2.11.1", "2023-03-20T19:29:46Z")


class FakeEngine:
    """The engine's image list and removal; a tag listed in ``busy`` is refused as in use."""

    def __init__(self, images: list[ImageInfo], known: dict[str, str], busy: frozenset[str] = frozenset()):
        self.images = images
        self.known = known
        self.busy = busy
        self.removed: list[str] = []

    def list_images(self, label_filter: Mapping[str, str]) -> list[ImageInfo]:
        return [i for i in self.images if all(i.labels.get(k) == v for k, v in label_filter.items())]

    def image_id(self, tag: str) -> str | None:
        return self.known.get(tag)

    def remove_image(self, tag: str) -> bool:
        if tag in self.busy:
            raise EngineError(f"removing image {tag}: conflict: image is being used by a running container")
        self.removed.append(tag)
        return True


def _info(tag: str, name: str | None, size: int = 10**9, harness: bool = True) -> ImageInfo:
    labels = {"tfmh": "1"} if harness else {"maintainer": "someone"}
    if name:
        labels |= {"tfmh.image": name, "tfmh.tf": "2.11.1", "tfmh.wheels_as_of": BASIS.uploaded_prior_to}
    return ImageInfo(f"sha256:{abs(hash(tag))}", (tag,), size, 1_764_000_000.0, labels)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, FakeEngine, str]:
    """A matrix, a cache with the TF 2.11 lock, an engine with its base; returns the 2.11 image's tag."""
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(MATRIX, encoding="utf-8")
    cache = tmp_path / "cache"
    spec = load_matrix(matrix).images["tf2.11-py3.9"]
    reqs, platforms = ("tensorflow-cpu==2.11.1",), platform_tags(31)
    path = lock_path(cache, "3.9", lock_key(reqs, "3.9", platforms, POLICY))
    path.parent.mkdir(parents=True)
    path.write_text(WheelLock(reqs, "3.9", platforms, (), BASIS).to_json(), encoding="utf-8")
    base = recipe_for(spec.base).ref  # type: ignore[arg-type]
    engine = FakeEngine([], {base: "sha256:base"})
    plan = known_plan(spec, engine, cache, docker_dir())  # type: ignore[arg-type]
    assert plan is not None and plan.buildargs["WHEELS_AS_OF"] == BASIS.uploaded_prior_to
    engine.images = [
        _info(base, None),
        _info(plan.tag, "tf2.11-py3.9"),
        _info("tfmh/tf2.11-py3.9:0ld0ld0ld0ld0ld0ld00", "tf2.11-py3.9"),  # an older build
        _info("tfmh/tf2.21-py3.11:0ld0ld0ld0ld0ld0ld00", "tf2.21-py3.11"),  # its tag is unknown: no lock
        _info("tfmh/tf2.4-py3.8:aaaaaaaaaaaaaaaaaaaa", "tf2.4-py3.8"),  # no longer in the matrix
        _info("tfmh/base-buster:aaaaaaaaaaaaaaaa", None),  # a base no image uses
        _info("tfmh/someone-else:1", "x", harness=False),  # not the harness's (no label)
        _info("library/python:3.9", "tf2.4-py3.8"),  # labelled, but outside the tfmh/ namespace
    ]
    return matrix, cache, engine, plan.tag


def test_prune_removes_what_the_matrix_no_longer_produces(setup: tuple[Path, Path, FakeEngine, str]):
    matrix, cache, engine, current = setup
    dry = prune_images(matrix, cache, dry_run=True, engine=engine)
    assert engine.removed == []
    want = {
        "tfmh/tf2.11-py3.9:0ld0ld0ld0ld0ld0ld00": "an older build of a matrix image",
        "tfmh/tf2.4-py3.8:aaaaaaaaaaaaaaaaaaaa": "not an image of the matrix",
        "tfmh/base-buster:aaaaaaaaaaaaaaaa": "not an image of the matrix",
    }
    assert {i.image.tag: i.why for i in dry.candidates} == want
    assert dry.kept_unknown == ["tf2.21-py3.11"] and dry.exit_code == 0
    done = prune_images(matrix, cache, dry_run=False, engine=engine)
    assert sorted(engine.removed) == sorted(want) and current not in engine.removed
    assert [i.image.tag for i in done.removed] == [i.image.tag for i in dry.candidates]


def test_an_image_in_use_is_kept_and_prune_exits_1(setup: tuple[Path, Path, FakeEngine, str]):
    matrix, cache, engine, _ = setup
    engine.busy = frozenset({"tfmh/tf2.4-py3.8:aaaaaaaaaaaaaaaaaaaa"})
    result = prune_images(matrix, cache, dry_run=False, engine=engine)
    assert [item.image.tag for item, _ in result.failed] == ["tfmh/tf2.4-py3.8:aaaaaaaaaaaaaaaaaaaa"]
    console = Console(record=True, width=200)
    assert print_prune(console, result, dry_run=False) == 1
    text = console.export_text()
    assert "kept tfmh/tf2.4-py3.8:aaaaaaaaaaaaaaaaaaaa" in text and "removed 2 image(s)" in text


def test_list_shows_only_harness_images_with_last_use(setup: tuple[Path, Path, FakeEngine, str]):
    _, cache, engine, current = setup
    record_use(cache, current, when=1_764_300_000.0)
    assert read_uses(cache) == {current: "2025-11-28T03:20:00Z"}
    images = list_images(cache, engine=engine)
    tags = [i.tag for i in images]
    assert "tfmh/someone-else:1" not in tags and "library/python:3.9" not in tags and len(tags) == 6
    mine = next(i for i in images if i.tag == current)
    assert (mine.name, mine.tf, mine.last_used) == ("tf2.11-py3.9", "2.11.1", "2025-11-28T03:20:00Z")
    base = next(i for i in images if i.tag.startswith("tfmh/base-bullseye"))
    assert (base.name, base.tf, base.last_used) == ("base-bullseye", "", None)
    console = Console(record=True, width=250)
    print_images(console, images)
    row = next(line for line in console.export_text().splitlines() if current in line)
    assert "2.11.1" in row and "1.00 GB" in row and "2025-11-28T03:20:00Z" in row
    out = io.StringIO()
    print_images(Console(file=out), images, as_json=True)
    doc = json.loads(out.getvalue())
    assert doc["kind"] == "tfmh.images" and len(doc["images"]) == 6
    entry = next(e for e in doc["images"] if e["tag"] == current)
    assert (entry["tf"], entry["last_used"], entry["size_bytes"]) == (
        "2.11.1",
        "2025-11-28T03:20:00Z",
        mine.size,
    )
    assert next(e for e in doc["images"] if e["name"] == "base-bullseye")["tf"] is None


def test_engine_list_entries_are_read_from_the_api_form():
    entry = {
        "Id": "sha256:abc",
        "RepoTags": ["tfmh/a:1", "<none>:<none>"],
        "Size": 5,
        "Created": 1_700_000_000,
        "Labels": {"tfmh": "1"},
    }
    info = ImageInfo.from_list_entry(entry)
    assert info.tags == ("tfmh/a:1",) and info.created == 1_700_000_000.0 and info.labels == {"tfmh": "1"}
    assert ImageInfo.from_list_entry({"Id": "x", "RepoTags": None, "Labels": None}).tags == ()


def test_cli_parses_images_and_prune():
    from harness.cliparser import build_parser

    args = build_parser().parse_args(["images", "prune", "--dry-run", "--matrix", "m.yaml"])
    assert (args.command, args.action, args.dry_run, args.matrix) == ("images", "prune", True, Path("m.yaml"))
    assert build_parser().parse_args(["images"]).action == "list"
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["images", "remove-everything"])
    assert exc.value.code == 2
