"""Headless Chromium (Debian's `chromium`) as a page checker: DOM dump, console errors, screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]


def run_chromium(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None, "chromium is not installed (apt-get install chromium)"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={cwd / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def console_errors(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if "Uncaught" in line or ("CONSOLE" in line and re.search(r"error", line, re.I))
    ]


def check_page(page: Path, screenshot: Path) -> str:
    """Load `page`: no console errors, scripts initialised; save a screenshot. Returns the DOM."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = run_chromium(["--dump-dom", page.as_uri()], Path(tmp))
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert console_errors(proc.stderr) == []
        assert 'data-ready="1"' in proc.stdout, "the page's script did not initialise"
        shot = run_chromium(
            [f"--screenshot={screenshot}", "--window-size=1280,2400", page.as_uri()], Path(tmp)
        )
        assert shot.returncode == 0, shot.stderr[-2000:]
        assert screenshot.stat().st_size > 20_000
    return proc.stdout
