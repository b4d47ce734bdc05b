"""Shared pytest configuration: opt-in markers for tests that need a real Docker engine or TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-docker", action="store_true", help="run tests that need a real Docker engine")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    docker_on = config.getoption("--run-docker") or os.environ.get("TFMH_DOCKER_TESTS") == "1"
    skip = pytest.mark.skip(reason="needs a real Docker engine: set TFMH_DOCKER_TESTS=1 or pass --run-docker")
    for item in items:
        if "docker" in item.keywords and not docker_on:
            item.add_marker(skip)


@pytest.fixture
def root() -> Path:
    return ROOT
