"""The resolution basis of a wheel lock: an image's dependencies are resolved *as of its TF release*.

Old TF releases declare loose lower bounds (``numpy>=1.19``, ``protobuf>=3.9``); resolved today, pip picks
numpy 2 / protobuf 5 and the release fails to import. So the host resolves every pinned release against the
index as it was when that release was published: pip only considers files uploaded before the anchor
(the exactly pinned package, e.g. ``tensorflow-cpu==2.5.3``) was uploaded (``--uploaded-prior-to``). The
upload time is read from the index's JSON simple API (PEP 691) at lock time and kept in the lock.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from harness.errors import BuildError
from harness.timestamps import utc_iso

#: named in every lock key that uses it: bump when the rule changes
POLICY = "as-of-release/2"
DEFAULT_INDEX = "https://pypi.org/simple"
#: files of the anchor release uploaded up to this long after its newest file are still "of the release"
_SLACK = timedelta(seconds=1)
_PIN_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([0-9][0-9A-Za-z.+!-]*)\s*$")
_ACCEPT = "application/vnd.pypi.simple.v1+json"

#: fetch(url) -> the body of a JSON simple-API page (injectable for tests)
Fetch = Callable[[str], bytes]


@dataclass(frozen=True)
class Basis:
    """What a lock was resolved against: the policy, its anchor and the upload-time cutoff."""

    policy: str
    anchor: str
    uploaded_prior_to: str

    def to_doc(self) -> dict[str, str]:
        return {"policy": self.policy, "anchor": self.anchor, "uploaded_prior_to": self.uploaded_prior_to}


def anchor_of(requirements: Sequence[str]) -> tuple[str, str] | None:
    """(name, version) of the first exactly pinned requirement (the image's TF package), if any."""
    for req in requirements:
        match = _PIN_RE.match(req)
        if match:
            return match.group(1), match.group(2)
    return None


def policy_for(requirements: Sequence[str]) -> str | None:
    """The resolution policy a requirement set gets: as-of-release when it pins an anchor, else none."""
    return POLICY if anchor_of(requirements) is not None else None


def index_url() -> str:
    return (os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/")


def _fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": _ACCEPT})
    with urllib.request.urlopen(request, timeout=60) as response:
        return bytes(response.read())


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _file_version(filename: str, name: str) -> str | None:
    """The version part of a wheel or sdist file name of distribution ``name``."""
    stem = filename.removesuffix(".whl").removesuffix(".tar.gz").removesuffix(".zip")
    head, sep, rest = stem.partition("-")
    if not sep or _canonical(head) != _canonical(name):
        return None
    return rest.split("-", 1)[0]


def parse_upload_times(page: dict[str, object], name: str, version: str) -> list[datetime]:
    """The upload times of ``name==version``'s files in a JSON simple-API page."""
    files = page.get("files")
    times = []
    for entry in files if isinstance(files, list) else []:
        if not isinstance(entry, dict) or _file_version(str(entry.get("filename", "")), name) != version:
            continue
        stamp = entry.get("upload-time")
        if isinstance(stamp, str):
            times.append(datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(timezone.utc))
    return times


def cutoff_text(when: datetime) -> str:
    """``2022-02-02T17:10:01Z``: the form pip's ``--uploaded-prior-to`` and the lock take."""
    return utc_iso(when.timestamp())


def release_basis(requirements: Sequence[str], fetch: Fetch | None = None) -> Basis | None:
    """The as-of-release basis of a requirement set (None when nothing is pinned exactly). Reads the
    anchor's upload time from the index; BuildError when the index cannot say."""
    anchor = anchor_of(requirements)
    if anchor is None:
        return None
    name, version = anchor
    url = f"{index_url()}/{_canonical(name)}/"
    try:
        page = json.loads((fetch or _fetch)(url))
    except (OSError, urllib.error.URLError, ValueError) as exc:
        raise BuildError(f"cannot read the upload time of {name}=={version} from {url}: {exc}") from exc
    times = parse_upload_times(page if isinstance(page, dict) else {}, name, version)
    if not times:
        raise BuildError(f"{url} lists no file of {name}=={version} with an upload time")
    # whole seconds, rounded up past the newest file of the release (pip's bound is exclusive)
    newest = max(times).replace(microsecond=0) + _SLACK
    return Basis(POLICY, f"{name}=={version}", cutoff_text(newest))
