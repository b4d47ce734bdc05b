"""The `harness` command's argument parser: one sub-parser per command, the option groups they share.
Values are parsed here and checked where they are used (`RunSettings`, the parameter contract), so every bad
value is one message naming its option."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from harness import __version__

DESCRIPTION = "The harness command: plan, build, run, report, compare, merge, images, bisect."


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--matrix", type=Path, default=Path("matrix.yaml"), help="matrix file (default: matrix.yaml)"
    )
    p.add_argument("--profile", default=os.environ.get("PROFILE") or "default", help="profile name")
    p.add_argument("--shard", help="run a deterministic 1/N of the cells: K/N")


def _params(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a cell parameter on top of the profile's, e.g. epochs=1 (repeatable)",
    )


def _dirs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results-dir", type=Path, default=Path("results"))
    p.add_argument("--reports-dir", type=Path, default=Path("reports"))


def _verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-v", "--verbose", action="store_true", help="stream every build log line (they always go to files)"
    )


def _measuring(p: argparse.ArgumentParser) -> None:
    """Where and how `run` (and `bisect`) execute; the measuring options are profile keys too (the command
    line wins)."""
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--runner", choices=["docker", "local"], default="docker")
    p.add_argument(
        "--python",
        action="append",
        metavar="PATH|IMAGE=PATH",
        help="interpreter for --runner local; repeatable: each image runs in the one with its TF and Python"
        " minor (IMAGE=PATH pins one image)",
    )
    p.add_argument("--repeats", type=int, help="minimum repeats (default: the profile's)")
    p.add_argument("--timeout", type=float, help="per-execution timeout in seconds (default: the profile's)")
    p.add_argument("--cpus", type=float, help="CPU limit per container")
    p.add_argument("--memory", help="memory limit per container, e.g. 4g")
    p.add_argument("--cpuset", help="pin containers to these CPUs, e.g. 0-1 (threads follow the count)")
    p.add_argument("--margin", type=float, metavar="PCT", help="practical-equivalence margin (default 3)")
    p.add_argument(
        "--target-ci", type=float, metavar="PCT", help="add rounds until every pair's ratio CI is within ±PCT"
    )
    p.add_argument("--max-repeats", type=int, metavar="N", help="adaptive rounds stop at N repeats per cell")
    p.add_argument("--budget", metavar="DURATION", help="wall-time budget of the run, e.g. 30m, 1h30m")
    p.add_argument(
        "--quiet-wait", type=float, metavar="S", help="wait up to S s for a quiet host before each execution"
    )
    p.add_argument(
        "--quiet-threshold", type=float, metavar="SHARE", help="share of the cores others may use (0.15)"
    )
    p.add_argument("--reruns", type=int, metavar="N", help="re-run a contended execution up to N times")
    p.add_argument(
        "--no-probe", dest="probe", action="store_false", default=None, help="skip the calibration probe"
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help="folder with a copy of mnist.npz (air-gapped hosts; default: downloaded once into the cache and "
        "checked against the pinned sha256), mounted read-only at /data",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"tf-matrix-harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plan", help="show the cells of a profile and which are unavailable and why")
    _common(p)
    _params(p)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument(
        "--offline", action="store_true", help="do not ask the Docker engine (GPU/registry checks)"
    )
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--data-dir", type=Path, help="folder with a copy of mnist.npz (as for `run`)")

    p = sub.add_parser("build", help="build the images a profile needs")
    _common(p)
    p.add_argument("--cache-dir", type=Path)
    _verbose(p)

    p = sub.add_parser("run", help="build what is missing, then run every cell x repeat")
    _common(p)
    _params(p)
    _dirs(p)
    p.add_argument("--resume", metavar="RUN", help="continue RUN (id or path): skip cells already done")
    _measuring(p)
    _verbose(p)
    p.add_argument("--strict", action="store_true", help="unavailable cells count as failures (nightly CI)")
    p.add_argument("--report", action="store_true", help="render the HTML report at the end")

    p = sub.add_parser("bisect", help="find the first TF release whose step time regressed beyond PCT")
    _common(p)
    p.set_defaults(profile="timeline", resume=None)  # sizing, params, quiet settings; --shard is ignored
    p.add_argument("--workload", required=True, help="the cell's workload, e.g. mlp_fit")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="a cell parameter")
    p.add_argument("--good", required=True, metavar="RELEASE", help="a good TF release, e.g. 2.12")
    p.add_argument("--bad", required=True, metavar="RELEASE", help="a later, bad TF release, e.g. 2.21")
    p.add_argument("--threshold", type=float, required=True, metavar="PCT", help="slowdown vs good, percent")
    _dirs(p)
    _measuring(p)
    _verbose(p)
    p.add_argument("--report", action="store_true", help="render the HTML report at the end")

    p = sub.add_parser("report", help="render reports/<run-id>/index.html and reports/index.html")
    _dirs(p)
    p.add_argument("run", nargs="?", default="latest", help="run id or path (default: latest)")
    p.add_argument("--history", type=Path, help="a results folder with earlier runs for trends/regressions")
    p.add_argument("--include-contended", action="store_true", help="also use executions on a contended host")

    p = sub.add_parser("compare", help="compare two runs; exit 1 on a regression beyond the threshold")
    _dirs(p)
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument(
        "--fail-on-regression",
        type=float,
        metavar="PCT",
        help="exit 1 when a cell's slowdown CI lies entirely beyond PCT percent",
    )
    p.add_argument("--margin", type=float, metavar="PCT", help="practical-equivalence margin (default 3)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--include-contended", action="store_true", help="also use executions on a contended host")

    p = sub.add_parser("merge", help="combine result sets from several hosts or shards into one run")
    _dirs(p)
    p.add_argument("runs", nargs="+", help="run folders or ids")
    p.add_argument("--run-id", help="id of the merged run (default: derived)")

    p = sub.add_parser("images", help="list the images the harness built (`images prune`: drop unneeded)")
    p.add_argument("action", nargs="?", choices=["list", "prune"], default="list")
    p.add_argument("--matrix", type=Path, default=Path("matrix.yaml"), help="prune keeps what it needs")
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--dry-run", action="store_true", help="prune: only show what would be removed")
    p.add_argument("--format", choices=["table", "json"], default="table", help="list: a table or JSON")
    return parser
