"""The harness's own exceptions. Each carries the process exit code the CLI maps it to."""

from __future__ import annotations


class HarnessError(Exception):
    """Base class: a usage, configuration or environment error (exit code 2)."""

    exit_code = 2


class ConfigError(HarnessError):
    """The matrix file (or another input file) is invalid. The message names file, line and field."""


class EngineError(HarnessError):
    """The Docker engine cannot be reached or refused an operation."""


class BuildError(HarnessError):
    """An image build failed. The message names the image and shows the log tail."""


class ResultError(HarnessError):
    """A result document is malformed, or has a schema version this harness cannot read."""
