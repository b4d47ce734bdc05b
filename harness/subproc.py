"""Run a host command (debootstrap, tar, pip) with its output streamed line by line to a callback and a log
file; a failure raises BuildError with the log tail."""

from __future__ import annotations

import subprocess
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.errors import BuildError

TAIL_LINES = 30


def run_logged(
    cmd: Sequence[str],
    *,
    what: str,
    on_log: Callable[[str], None],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> None:
    """Run ``cmd``; stream merged stdout/stderr to ``on_log`` and ``log_path``; BuildError if it fails.

    ``what`` names the step in the error message (e.g. "debootstrap of bookworm for image tf2.15-py3.11").
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with log_path.open("w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        try:
            proc = subprocess.Popen(
                list(cmd),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        except OSError as exc:
            raise BuildError(f"{what} failed: cannot run {cmd[0]}: {exc.strerror}") from exc
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                tail.append(line)
                log.write(line + "\n")
                on_log(line)
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    if code != 0:
        shown = "\n".join(f"  | {line}" for line in tail)
        raise BuildError(f"{what} failed (exit {code}); last {len(tail)} log lines ({log_path}):\n{shown}")
