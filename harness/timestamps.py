"""UTC timestamps as the harness writes them: ISO 8601 in records, manifests and logs, compact in ids."""

from __future__ import annotations

import time


def utc_iso(ts: float) -> str:
    """``2026-11-26T14:20:00Z``: a Unix time to the second, in UTC."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def utc_compact(ts: float) -> str:
    """``20261126T142000Z``: the same instant for names (run ids start with it, so they sort by time)."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts))
