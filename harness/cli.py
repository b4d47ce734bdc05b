"""The `harness` command: plan, build, run, report, compare, merge.

Exit codes: 0 every runnable cell ok; 1 some cells failed, timed out or were OOM-killed (or a regression
beyond the threshold in `compare`); 2 usage, config or environment error; 130 interrupted (resumable).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from harness import __version__
from harness.compat import check_matrix_images, load_table
from harness.config import Matrix, file_sha256, load_matrix
from harness.errors import BuildError, ConfigError, HarnessError
from harness.execute import Backend
from harness.plan import Cell, Plan, expand, parse_shard, select_shard

EXIT_INTERRUPTED = 130


@dataclass
class Loaded:
    path: Path
    matrix: Matrix
    plan: Plan
    cells: list[Cell]


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
    p.add_argument("--runner", choices=["docker", "local"], default="docker")
    p.add_argument(
        "--python",
        action="append",
        metavar="PATH|IMAGE=PATH",
        help="interpreter for --runner local; repeatable: each image runs in the one with its TF and Python"
        " minor (IMAGE=PATH pins one image)",
    )
    p.add_argument("--resume", metavar="RUN", help="continue RUN (id or path): skip cells already done")
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
    _verbose(p)
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--strict", action="store_true", help="unavailable cells count as failures (nightly CI)")
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
    return parser


# ----------------------------------------------------------------------------------------------- loading


def load(args: argparse.Namespace) -> Loaded:
    """Validate the matrix, the compatibility of every image and the shard: before anything is built."""
    matrix = load_matrix(args.matrix)
    check_matrix_images(matrix.images, load_table(), args.matrix)
    plan = expand(matrix, args.profile, str(args.matrix))
    cells = plan.cells
    if args.shard:
        k, n = parse_shard(args.shard)
        cells = select_shard(cells, k, n)
    return Loaded(args.matrix, matrix, plan, cells)


def _engine() -> Any:
    from harness.engine import DockerEngine

    return DockerEngine.connect()


def _cache_dir(args: argparse.Namespace) -> Path:
    from harness.images import default_cache_dir

    return Path(args.cache_dir) if getattr(args, "cache_dir", None) else default_cache_dir()


# -------------------------------------------------------------------------------------------------- plan


def cmd_plan(args: argparse.Namespace, console: Console) -> int:
    from harness.console import plan_table

    loaded = load(args)
    cells = loaded.cells
    if not args.offline:
        cells = _annotate_engine(cells)
    if args.format == "json":
        doc = {
            "profile": args.profile,
            "baseline": loaded.plan.baseline,
            "cells": [c.describe() for c in cells],
        }
        sys.stdout.write(json.dumps(doc, indent=1) + "\n")
        return 0
    console.print(plan_table(cells, f"{args.matrix} — profile {args.profile!r}: {len(cells)} cells"))
    runnable = sum(c.available for c in cells)
    console.print(
        f"{runnable} runnable, {len(cells) - runnable} unavailable; baseline: {loaded.plan.baseline}"
    )
    return 0


def _annotate_engine(cells: list[Cell]) -> list[Cell]:
    """Mark the cells this host cannot run: no GPU, or a registry base that cannot be had (no pull). Reasons
    are short; the engine's raw error goes with the cell (its record's log_tail)."""
    from harness.images import short_engine_reason

    try:
        engine = _engine()
    except HarnessError as exc:
        return [c.unavailable(f"cannot ask the Docker engine: {exc}") if c.available else c for c in cells]
    gpu_ok, gpu_reason = engine.gpu_available() if any(c.device == "gpu" for c in cells) else (True, "")
    registry: dict[str, tuple[bool, str]] = {}
    out = []
    for cell in cells:
        base = cell.image.base
        if cell.available and base.kind == "registry":
            if base.image not in registry:
                registry[base.image] = engine.registry_available(base.image)
            ok, raw = registry[base.image]
            short = f"registry unreachable: {short_engine_reason(raw, base.image)}"
            cell = cell if ok else cell.unavailable(short, detail=raw)
        if cell.available and cell.device == "gpu" and not gpu_ok:
            cell = cell.unavailable(f"no GPU: {gpu_reason}")
        out.append(cell)
    return out


# ------------------------------------------------------------------------------------------------- build


def cmd_build(args: argparse.Namespace, console: Console) -> int:
    from harness.builddisplay import BuildDisplay
    from harness.images import ensure_images, logs_dir, short_build_error

    loaded = load(args)
    engine = _engine()
    images = list({c.image.name: c.image for c in loaded.cells if c.available}.values())
    started = time.monotonic()
    cache = _cache_dir(args)
    with BuildDisplay(console, logs_dir(cache), verbose=args.verbose) as display:
        display.images([image.name for image in images])
        try:
            ensure_images(images, engine, cache, on_log=display.log, events=display)
        except BuildError as exc:  # the display has printed its log tail
            raise BuildError(f"{short_build_error(str(exc))} (log tail above)") from exc
    display.line(f"build finished in {time.monotonic() - started:.1f} s: {display.summary()}")
    return 0


# --------------------------------------------------------------------------------------------------- run


def _backend(args: argparse.Namespace, console: Console, observer: Any) -> Backend:
    from harness.backends import DockerBackend, LocalBackend
    from harness.images import BuildEvents
    from harness.runprogress import ProgressObserver

    if isinstance(observer, ProgressObserver):
        observer.verbose = bool(getattr(args, "verbose", False))
    on_log = getattr(observer, "log", lambda line: None)
    if args.runner == "local":
        note = getattr(observer, "note", on_log)  # which interpreter has what: always worth a line
        return LocalBackend.from_args(args.python or [], data_dir=args.data_dir, on_log=note)
    return DockerBackend(
        engine=_engine(),
        cache_dir=_cache_dir(args),
        data_dir=args.data_dir,
        on_log=on_log,
        events=observer if isinstance(observer, BuildEvents) else None,
    )


def _overrides(args: argparse.Namespace) -> Any:
    from harness.session import Overrides

    return Overrides(
        repeats=args.repeats,
        timeout_s=args.timeout,
        cpus=args.cpus,
        mem_limit=args.memory,
        cpuset=args.cpuset,
        margin_pct=args.margin,
        target_ci_pct=args.target_ci,
        max_repeats=args.max_repeats,
        budget=args.budget,
        quiet_wait_s=args.quiet_wait,
        quiet_threshold=args.quiet_threshold,
        reruns=args.reruns,
        probe=args.probe,
    )


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from harness.console import summary_table
    from harness.datasets import prepare_data
    from harness.runner import exit_code_for
    from harness.runprogress import ProgressObserver
    from harness.session import RunSession, RunSettings
    from harness.store import RunStore, new_run_id, resolve_run

    loaded = load(args)
    settings = RunSettings.resolve(args.profile, loaded.plan.profile, _overrides(args))
    if args.resume is not None and not args.resume.strip():
        raise ConfigError("--resume: expected a run id or path, got an empty string")
    with ProgressObserver(console) as observer:
        backend = _backend(args, console, observer)
        previous: dict[str, Any] = {}
        if args.resume:
            store = RunStore(resolve_run(args.results_dir, args.resume))
            previous = store.read_manifest()
            if (
                previous.get("matrix_sha256") != file_sha256(args.matrix)
                or previous["profile"] != args.profile
            ):
                raise ConfigError(f"--resume {args.resume}: run was made from another matrix file or profile")
            run_id = str(previous["run_id"])
        else:
            run_id = new_run_id(args.profile, time.time(), secrets.token_hex(3))
            store = RunStore(args.results_dir / run_id)
        engine = getattr(backend, "engine", None)
        note = getattr(observer, "note", observer.log)
        cells, data = prepare_data(loaded.cells, _cache_dir(args), data_dir=args.data_dir, on_log=note)
        if data is not None and data.available and data.data_dir is not None:
            backend.data_dir = data.data_dir  # type: ignore[attr-defined]
        session = RunSession(
            settings=settings,
            plan=loaded.plan,
            cells=cells,
            matrix_path=str(args.matrix),
            matrix_sha256=file_sha256(args.matrix),
            matrix_text=args.matrix.read_text(encoding="utf-8"),
            backend=backend,
            store=store,
            run_id=run_id,
            engine_version=engine.version() if engine is not None else None,
            shard=args.shard,
            previous=previous,
            observer=observer,
        )
        observer.phase("build images")
        session.prepare()
        try:
            records = session.run()
        except KeyboardInterrupt:
            removed = backend.cleanup()
            observer.progress.stop()
            done = len(store.done())
            console.print(
                Text.assemble(
                    ("interrupted", "yellow"),
                    f": {done} result(s) kept in {store.path}; {removed} container(s) removed. Resume with: "
                    f"harness run --profile {args.profile} --resume {run_id}",
                )
            )
            return EXIT_INTERRUPTED
    console.print(summary_table(records))
    _print_adaptive(session, console)
    console.print(Text(f"results: {store.path}"))
    if args.report:
        _render(store.path, args.reports_dir, None, console)
    return exit_code_for([r for r in records if not r.get("rerun")], args.strict)


def _print_adaptive(session: Any, console: Console) -> None:
    target = session.settings.target_ci_pct
    if target is None:
        return
    pairs = session.adaptive.pairs
    reached = sum(1 for p in pairs if p["reached"])
    console.print(
        Text(
            f"adaptive repeats: {session.adaptive.rounds} extra round(s); {reached} of {len(pairs)} pair(s) "
            f"reached ±{target:g}%; stopped: {session.adaptive.stopped}"
        )
    )


# ----------------------------------------------------------------------------------------- report/compare


def _render(
    run_path: Path,
    reports_dir: Path,
    history_dir: Path | None,
    console: Console,
    include_contended: bool = False,
) -> Path:
    from harness.report import render_run_report, render_site_index
    from harness.store import RunData, list_runs, load_run, load_runs

    # read (and validate) everything first: an invalid run to report exits 2 before anything is written;
    # an invalid run among the history or the other runs of the folder is skipped with a warning
    run = load_run(run_path)
    here = run_path.resolve()
    history: list[RunData] = []
    skipped: list[tuple[Path, str]] = []
    if history_dir is not None:
        history, skipped = load_runs([p for p in list_runs(history_dir) if p.resolve() != here])
    others, skipped_others = load_runs([p for p in list_runs(run_path.parent) if p.resolve() != here])
    skipped += [s for s in skipped_others if s not in skipped]
    runs = sorted([run, *others], key=lambda r: r.path.name)
    warn = Console(stderr=True, highlight=False)
    for path, why in skipped:
        warn.print(Text.assemble(("warning: ", "bold yellow"), f"skipped run {path}: {why}"), soft_wrap=True)
    page = render_run_report(run, reports_dir, history=history, include_contended=include_contended)
    index = render_site_index(reports_dir, runs)
    console.print(Text(f"report: {page}\nsite index: {index}"))
    return page


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from harness.store import resolve_run

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
    from harness.compare import compare_runs
    from harness.store import load_run, resolve_run

    threshold = args.fail_on_regression
    if threshold is not None and not (math.isfinite(threshold) and 0 <= threshold <= 1000):
        raise ConfigError(f"--fail-on-regression: expected a percentage 0..1000, got {threshold}")
    margin = args.margin
    if margin is not None and not (math.isfinite(margin) and 0 < margin <= 50):
        raise ConfigError(f"--margin: expected 0 < PCT <= 50, got {margin}")
    run_a = load_run(resolve_run(args.results_dir, args.run_a))
    run_b = load_run(resolve_run(args.results_dir, args.run_b))
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
    from harness.merge import merge_runs
    from harness.store import resolve_run

    sources = [resolve_run(args.results_dir, ref) for ref in args.runs]
    out = merge_runs(sources, args.results_dir, args.run_id)
    console.print(Text(f"merged {len(sources)} run(s) into {out}"))
    return 0


COMMANDS = {
    "plan": cmd_plan,
    "build": cmd_build,
    "run": cmd_run,
    "report": cmd_report,
    "compare": cmd_compare,
    "merge": cmd_merge,
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
