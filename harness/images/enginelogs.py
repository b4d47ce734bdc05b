"""Container and build output as the harness keeps it: the capped tail of a container's logs, the lines of a
streamed build, and the wording of a failed build. No docker SDK (`harness.images.engine` feeds these).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.images.sandbox import LOG_CAP_BYTES as LOG_CAP_BYTES

LOG_TAIL_LINES = 5000
#: lines of build log shown in a BuildError
BUILD_TAIL_LINES = 30


def cap_logs(text: str, limit: int = LOG_CAP_BYTES) -> str:
    """The last ``limit`` bytes of ``text`` (UTF-8), marked when truncated."""
    data = text.encode("utf-8", "replace")
    if len(data) <= limit:
        return text
    return "[… log truncated …]\n" + data[-limit:].decode("utf-8", "replace")


def consume_build_chunk(chunk: Any, emit: Callable[[str], None]) -> str | None:
    """Emit the log lines of one decoded build chunk; return the error message if it carries one."""
    if not isinstance(chunk, dict):
        emit(str(chunk).rstrip())
        return None
    if chunk.get("error"):
        message = str(chunk["error"]).strip()
        emit(f"ERROR: {message}")
        return message
    text = chunk.get("stream") or chunk.get("status")
    if text:
        for line in str(text).split("\n"):
            if line.strip():
                emit(line.rstrip("\r"))
    return None


def build_failure_message(tag: str, error: str, log_path: Path, tail: list[str]) -> str:
    """A BuildError's text: what failed, and the last lines of its log with where the whole log is."""
    shown = "\n".join(f"  | {line}" for line in tail)
    return f"build of image {tag} failed: {error}\n  last {len(tail)} log lines ({log_path}):\n{shown}"
