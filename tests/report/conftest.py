from __future__ import annotations

import copy
from pathlib import Path

import pytest

from harness.results.store import RunData, load_run

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RUNS = FIXTURES / "runs"
CURRENT = "20261126T142000Z-fixture-3f2a00"
EARLIER = "20261126T090000Z-fixture-a1b2c3"


@pytest.fixture(scope="session")
def current_run() -> RunData:
    return load_run(RUNS / CURRENT)


@pytest.fixture(scope="session")
def earlier_run() -> RunData:
    return load_run(RUNS / EARLIER)


@pytest.fixture
def fresh_current(current_run: RunData) -> RunData:
    """A deep copy that a test may mutate."""
    return copy.deepcopy(current_run)
