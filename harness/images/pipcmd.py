"""The harness's pip commands on the host: download wheels for another interpreter/platform, download one
sdist, and the environment they run in.

``pip download --python-version 3.9`` checks wheels and ``Requires-Python`` against 3.9 but evaluates
dependency markers (``importlib-metadata; python_version < "3.10"``) against the interpreter running pip, so
a host on Python 3.11 leaves out what a 3.9 image needs. The harness therefore runs pip through a small
launcher that sets the marker environment's Python version to the target's first.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

#: run pip with the marker environment of CPython <argv[1]> (pip's own vendored ``packaging``)
TARGET_PIP = """\
import sys
from pip._vendor.packaging import markers
env = markers.default_environment()
env.update(python_version=sys.argv[1], python_full_version=sys.argv[1] + ".0",
           implementation_name="cpython", implementation_version=sys.argv[1] + ".0",
           platform_python_implementation="CPython")
markers.default_environment = lambda: dict(env)
from pip._internal.cli.main import main
sys.argv = ["pip"] + sys.argv[2:]
sys.exit(main())
"""


def target_pip(python: str) -> list[str]:
    """The command prefix of a pip that evaluates markers as CPython ``python`` (e.g. "3.9") would."""
    return [sys.executable, "-c", TARGET_PIP, python]


def pip_download_command(
    python: str,
    platforms: Sequence[str],
    dest: Path,
    find_links: Path,
    args: Sequence[str],
    uploaded_prior_to: str = "",
) -> list[str]:
    """``pip download`` of wheels only for another interpreter/platform; local wheels win ties (pip does not
    filter local files by upload time, so a resolution with a cutoff links only its own built wheels)."""
    cmd = [*target_pip(python), "download", "--no-cache-dir", "--disable-pip-version-check"]
    cmd += ["--only-binary=:all:", "--implementation", "cp", "--python-version", python]
    for tag in platforms:
        cmd += ["--platform", tag]
    if uploaded_prior_to:
        cmd += ["--uploaded-prior-to", uploaded_prior_to]
    cmd += ["--find-links", str(find_links), "--dest", str(dest)]
    return cmd + list(args)


def sdist_download_command(python: str, dest: Path, requirement: str, uploaded_prior_to: str) -> list[str]:
    """``pip download`` of the newest sdist of one requirement as of the cutoff (no dependencies; only that
    distribution is taken from source: its build requirements may be wheels)."""
    name = re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0]
    cmd = [*target_pip(python), "download", "--no-cache-dir", "--disable-pip-version-check"]
    cmd += ["--no-deps", f"--no-binary={name}", "--implementation", "cp", "--python-version", python]
    if uploaded_prior_to:
        cmd += ["--uploaded-prior-to", uploaded_prior_to]
    return [*cmd, "--dest", str(dest), requirement]


def pip_env() -> dict[str, str]:
    """The environment of the harness's pip: no prompts, and no find-links from the user's environment (local
    files would win over the index and bypass the lock's resolution basis)."""
    env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}
    return {**env, "PIP_NO_INPUT": "1"}
