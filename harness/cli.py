"""The `harness` command: plan, build, run, report, compare, merge, images, bisect.

Exit codes: 0 every runnable cell ok; 1 some cells failed, timed out or were OOM-killed (or a regression
beyond the threshold in `compare`); 2 usage, config or environment error; 130 interrupted (resumable).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from rich.console import Console
from rich.text import Text

from harness import cachedirs
from harness.cliparser import build_parser
from harness.errors import BuildError, ConfigError, HarnessError
from harness.execution.settings import Overrides, RunOptions, RunSettings
from harness.matrix.params import format_assignments
from harness.matrix.source import MatrixSource, load_source

EXIT_INTERRUPTED = 130


# ----------------------------------------------------------------------------------------------- loading


def _source(args: argparse.Namespace) -> MatrixSource:
    return load_source(args.matrix, args.profile, args.shard, getattr(args, "params", ()))


# -------------------------------------------------------------------------------------------------- plan


def cmd_plan(args: argparse.Namespace, console: Console) -> int:
    from harness.execution.backends import docker_availability
    from harness.execution.datasets import check_data
    from harness.report.console import plan_table

    if args.data_dir is not None and not args.data_dir.is_dir():
        raise ConfigError(f"--data-dir {args.data_dir}: no such folder")
    source = _source(args)
    cache = cachedirs.root(args.cache_dir)
    cells = source.cells if args.offline else docker_availability(source.cells, cache)
    cells, data_note = check_data(cells, cache, data_dir=args.data_dir)
    if args.format == "json":
        doc = {
            "profile": args.profile,
            "baseline": source.plan.baseline,
            "data": data_note,
            "cells": [c.describe() for c in cells],
        }
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        return 0
    console.print(plan_table(cells, f"{args.matrix} — profile {args.profile!r}: {len(cells)} cells"))
    runnable = sum(c.available for c in cells)
    console.print(
        f"{runnable} runnable, {len(cells) - runnable} unavailable; baseline: {source.plan.baseline}"
    )
    if data_note is not None:
        console.print(Text(data_note))
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
                    f"removed. Resume with: harness run --profile {args.profile} "
                    + (f"{format_assignments(source.params)} " if source.params else "")
                    + f"--resume {result.run_id}",
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
    from harness.analysis.compare import CompareRequest, compare_folders

    request = CompareRequest(
        args.results_dir,
        args.run_a,
        args.run_b,
        args.fail_on_regression,
        args.margin,
        as_json=args.format == "json",
        include_contended=args.include_contended,
    )
    return compare_folders(request, console)


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
    return print_images(console, list_images(cache), as_json=args.format == "json")


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
