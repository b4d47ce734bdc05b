"""The `harness` command: plan, build, run, report, compare, merge, images, bisect.

Exit codes: 0 every runnable cell ok; 1 some cells failed, timed out or were OOM-killed (or a regression
beyond the threshold in `compare`); 2 usage, config or environment error; 130 interrupted (resumable).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from rich.console import Console
from rich.text import Text

from harness import __version__, cachedirs
from harness.errors import BuildError, ConfigError, HarnessError
from harness.execution.settings import Overrides, RunOptions, RunSettings
from harness.matrix.source import MatrixSource, load_source

EXIT_INTERRUPTED = 130


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--matrix", type=Path, default=Path("matrix.yaml"), help="matrix file (default: matrix.yaml)"
    )
    p.add_argument("--profile", default=os.environ.get("PROFILE") or "default", help="profile name")
    p.add_argument("--shard", help="run a deterministic 1/N of the cells: K/N")


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
    parser = argparse.ArgumentParser(prog="harness", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"tf-matrix-harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plan", help="show the cells of a profile and which are unavailable and why")
    _common(p)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument(
        "--offline", action="store_true", help="do not ask the Docker engine (GPU/registry checks)"
    )

    p = sub.add_parser("build", help="build the images a profile needs")
    _common(p)
    p.add_argument("--cache-dir", type=Path)
    _verbose(p)

    p = sub.add_parser("run", help="build what is missing, then run every cell x repeat")
    _common(p)
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
    return parser


# ----------------------------------------------------------------------------------------------- loading


def _source(args: argparse.Namespace) -> MatrixSource:
    return load_source(args.matrix, args.profile, args.shard)


# -------------------------------------------------------------------------------------------------- plan


def cmd_plan(args: argparse.Namespace, console: Console) -> int:
    from harness.execution.backends import docker_availability
    from harness.report.console import plan_table

    source = _source(args)
    cache = cachedirs.root(getattr(args, "cache_dir", None))
    cells = source.cells if args.offline else docker_availability(source.cells, cache)
    if args.format == "json":
        doc = {
            "profile": args.profile,
            "baseline": source.plan.baseline,
            "cells": [c.describe() for c in cells],
        }
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        return 0
    console.print(plan_table(cells, f"{args.matrix} — profile {args.profile!r}: {len(cells)} cells"))
    runnable = sum(c.available for c in cells)
    console.print(
        f"{runnable} runnable, {len(cells) - runnable} unavailable; baseline: {source.plan.baseline}"
    )
    return 0


# ------------------------------------------------------------------------------------------------- build


def cmd_build(args: argparse.Namespace, console: Console) -> int:
    from harness.execution.backends import connect_engine
    from harness.images.build import ensure_images
    from harness.images.imageplan import short_build_error
    from harness.report.builddisplay import BuildDisplay

    source = _source(args)
    engine = connect_engine()
    images = list({c.image.name: c.image for c in source.cells if c.available}.values())
    started = time.monotonic()
    cache = cachedirs.root(args.cache_dir)
    with BuildDisplay(console, cachedirs.logs(cache), verbose=args.verbose) as display:
        display.images([image.name for image in images])
        try:
            ensure_images(images, engine, cache, on_log=display.log, events=display)
        except BuildError as exc:  # the display has printed its log tail
            raise BuildError(f"{short_build_error(str(exc))} (log tail above)") from exc
    display.line(f"build finished in {time.monotonic() - started:.1f} s: {display.summary()}")
    return 0


# --------------------------------------------------------------------------------------------------- run


#: the option (argparse dest) of an `Overrides` field, when it is not the field's name without _s/_pct
ARG_OF = {"mem_limit": "memory"}


def _run_settings(args: argparse.Namespace, source: MatrixSource) -> tuple[RunSettings, RunOptions]:
    """The command line's values as given (None: not given, the profile decides), checked once."""
    names = {
        f.name: ARG_OF.get(f.name, f.name.removesuffix("_s").removesuffix("_pct")) for f in fields(Overrides)
    }
    overrides = Overrides(**{field: getattr(args, arg) for field, arg in names.items()})
    settings = RunSettings.resolve(args.profile, source.plan.profile, overrides)
    options = RunOptions(
        results_dir=args.results_dir,
        runner=args.runner,
        python=tuple(args.python) if args.python is not None else (),
        data_dir=args.data_dir,
        cache_dir=args.cache_dir,
        resume=args.resume,
        verbose=args.verbose,
    )
    return settings, options


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from harness.execution.session import run_matrix
    from harness.report.console import adaptive_line, public_record_table, summary_table
    from harness.report.runprogress import ProgressObserver

    source = _source(args)
    settings, options = _run_settings(args, source)
    with ProgressObserver(console, verbose=options.verbose) as observer:
        result = run_matrix(source, settings, options, observer)
        if result.interrupted:
            observer.progress.stop()
            console.print(
                Text.assemble(
                    ("interrupted", "yellow"),
                    f": {result.done} result(s) kept in {result.path}; {result.removed} container(s) "
                    f"removed. Resume with: harness run --profile {args.profile} --resume {result.run_id}",
                )
            )
            return EXIT_INTERRUPTED
    if result.analysis is not None:
        console.print(summary_table(result.analysis))
        if (record := public_record_table(result.analysis)) is not None:
            console.print(record)
    if (line := adaptive_line(result.settings.target_ci_pct, result.adaptive)) is not None:
        console.print(line)
    console.print(Text(f"results: {result.path}"))
    if args.report:
        _render(result.path, args.reports_dir, None, console)
    return result.exit_code(args.strict)


def cmd_bisect(args: argparse.Namespace, console: Console) -> int:
    from harness.execution.bisect import BisectRequest, run_bisect
    from harness.report.bisectsummary import bisect_summary
    from harness.report.runprogress import ProgressObserver

    source = _source(args)
    settings, options = _run_settings(args, source)
    request = BisectRequest(args.workload, tuple(args.param), args.good, args.bad, args.threshold)
    with ProgressObserver(console, verbose=options.verbose) as observer:
        result = run_bisect(source, settings, options, request, observer)
    console.print(bisect_summary(result))
    if args.report and not result.interrupted:
        _render(result.path, args.reports_dir, None, console)
    return result.exit_code()


# ----------------------------------------------------------------------------------------- report/compare


def _render(
    run_path: Path,
    reports_dir: Path,
    history_dir: Path | None,
    console: Console,
    include_contended: bool = False,
) -> Path:
    from harness.report.site import render_with_index

    done = render_with_index(run_path, reports_dir, history_dir, include_contended)
    warn = Console(stderr=True, highlight=False)
    for path, why in done.skipped:
        warn.print(Text.assemble(("warning: ", "bold yellow"), f"skipped run {path}: {why}"), soft_wrap=True)
    console.print(Text(f"report: {done.page}\nsite index: {done.index}"))
    return done.page


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from harness.results.store import resolve_run

    if args.history is not None and not args.history.is_dir():
        raise ConfigError(f"--history {args.history}: no such folder")
    _render(
        resolve_run(args.results_dir, args.run),
        args.reports_dir,
        args.history,
        console,
        args.include_contended,
    )
    return 0


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    from harness.analysis.compare import compare_runs
    from harness.analysis.stored import refresh_all
    from harness.results.store import load_run, resolve_run

    threshold = args.fail_on_regression
    if threshold is not None and not (math.isfinite(threshold) and 0 <= threshold <= 1000):
        raise ConfigError(f"--fail-on-regression: expected a percentage 0..1000, got {threshold}")
    margin = args.margin
    if margin is not None and not (math.isfinite(margin) and 0 < margin <= 50):
        raise ConfigError(f"--margin: expected 0 < PCT <= 50, got {margin}")
    run_a = load_run(resolve_run(args.results_dir, args.run_a))
    run_b = load_run(resolve_run(args.results_dir, args.run_b))
    refresh_all([run_a, run_b])
    return compare_runs(
        run_a,
        run_b,
        threshold,
        console,
        margin_pct=margin,
        as_json=args.format == "json",
        include_contended=args.include_contended,
    )


def cmd_merge(args: argparse.Namespace, console: Console) -> int:
    from harness.analysis.stored import refresh_folder
    from harness.results.merge import merge_runs
    from harness.results.store import resolve_run

    sources = [resolve_run(args.results_dir, ref) for ref in args.runs]
    out = merge_runs(sources, args.results_dir, args.run_id, finish=refresh_folder)
    console.print(Text(f"merged {len(sources)} run(s) into {out}"))
    return 0


def cmd_images(args: argparse.Namespace, console: Console) -> int:
    from harness.execution.imagestore import list_images, prune_images
    from harness.report.imagelist import print_images, print_prune

    cache = cachedirs.root(args.cache_dir)  # prune: exit 1 when an image is still used by a container
    if args.action == "prune":
        return print_prune(console, prune_images(args.matrix, cache, dry_run=args.dry_run), args.dry_run)
    return print_images(console, list_images(cache))


COMMANDS = {
    "plan": cmd_plan,
    "build": cmd_build,
    "run": cmd_run,
    "report": cmd_report,
    "compare": cmd_compare,
    "merge": cmd_merge,
    "images": cmd_images,
    "bisect": cmd_bisect,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=False, highlight=False, width=None if sys.stdout.isatty() else 160)
    err = Console(stderr=True, highlight=False)
    try:
        return COMMANDS[args.command](args, console)
    except HarnessError as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False, soft_wrap=True)
        return exc.exit_code
    except OSError as exc:  # an unwritable reports folder, a full disk: an environment error
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(Text.assemble(("error: ", "bold red"), f"{where}{exc.strerror or exc}"), soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED
