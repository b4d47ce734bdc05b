"""One timestamp form: UTC whatever the local zone, to the second."""

from __future__ import annotations

import time

import pytest

from harness.timestamps import utc_compact, utc_iso


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_timestamps_are_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch, zone: str) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        assert utc_iso(1795856400.9) == "2026-11-28T09:00:00Z"
        assert utc_compact(1795856400.9) == "20261128T090000Z"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_compact_stamps_sort_like_the_times() -> None:
    times = [0.0, 59.0, 3600.0, 86400.0 * 400, 1795856400.0]
    assert sorted(utc_compact(t) for t in reversed(times)) == [utc_compact(t) for t in times]
