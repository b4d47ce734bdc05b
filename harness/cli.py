"""The `harness` command: plan, build, run, report, compare, merge.

Exit codes: 0 every runnable cell ok; 1 some cells failed, timed out or were OOM-killed (or a regression
beyond the threshold in `compare`); 2 usage, config or environment error; 130 interrupted (resumable).
"""

from __future__ import annotations

import argparse
import json
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
from harness.errors import ConfigError, HarnessError
from harness.execute import Backend
from harness.hostinfo import host_facts
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

    p = sub.add_parser("run", help="build what is missing, then run every cell x repeat")
    _common(p)
    _dirs(p)
    p.add_argument("--runner", choices=["docker", "local"], default="docker")
    p.add_argument("--python", help="interpreter for --runner local")
    p.add_argument("--resume", metavar="RUN", help="continue RUN (id or path): skip cells already done")
    p.add_argument("--repeats", type=int, help="override the profile's repeats")
    p.add_argument("--timeout", type=float, help="per-execution timeout in seconds (default: the profile's)")
    p.add_argument("--cpus", type=float, help="CPU limit per container")
    p.add_argument("--memory", help="memory limit per container, e.g. 4g")
    p.add_argument("--data-dir", type=Path, help="folder with mnist.npz, mounted read-only at /data")
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--strict", action="store_true", help="unavailable cells count as failures (nightly CI)")
    p.add_argument("--report", action="store_true", help="render the HTML report at the end")

    p = sub.add_parser("report", help="render reports/<run-id>/index.html and reports/index.html")
    _dirs(p)
    p.add_argument("run", nargs="?", default="latest", help="run id or path (default: latest)")
    p.add_argument("--history", type=Path, help="a results folder with earlier runs for trends/regressions")

    p = sub.add_parser("compare", help="compare two runs; exit 1 on a regression beyond the threshold")
    _dirs(p)
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--fail-on-regression", type=float, metavar="PCT")

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
    """Mark the cells this host cannot run: no GPU, or a registry base that cannot be had (no pull)."""
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
            ok, why = registry[base.image]
            cell = cell if ok else cell.unavailable(why)
        if cell.available and cell.device == "gpu" and not gpu_ok:
            cell = cell.unavailable(f"no GPU: {gpu_reason}")
        out.append(cell)
    return out


# ------------------------------------------------------------------------------------------------- build


def cmd_build(args: argparse.Namespace, console: Console) -> int:
    from harness.images import ensure_images

    loaded = load(args)
    engine = _engine()
    images = list({c.image.name: c.image for c in loaded.cells if c.available}.values())
    started = time.monotonic()
    statuses = ensure_images(
        images,
        engine,
        _cache_dir(args),
        on_log=lambda line: console.print(line, markup=False, highlight=False),
    )
    for name, st in statuses.items():
        mark = "[green]ready[/green]" if st.available else f"[yellow]unavailable[/yellow]: {st.reason}"
        console.print(f"{name}: {mark} {st.tag or ''}", highlight=False)
    console.print(f"build finished in {time.monotonic() - started:.2f} s")
    return 0


# --------------------------------------------------------------------------------------------------- run


def _backend(args: argparse.Namespace, console: Console, observer: Any) -> Backend:
    from harness.backends import DockerBackend, LocalBackend

    if args.runner == "local":
        if not args.python:
            raise ConfigError("--runner local needs --python PATH (the interpreter with TensorFlow)")
        return LocalBackend(python=args.python, data_dir=args.data_dir)
    return DockerBackend(
        engine=_engine(), cache_dir=_cache_dir(args), data_dir=args.data_dir, on_log=observer.log
    )


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from harness.console import ProgressObserver, summary_table
    from harness.runner import Runner, exit_code_for, plan_jobs, prepare_cells
    from harness.store import RunStore, new_run_id, resolve_run

    loaded = load(args)
    profile = loaded.plan.profile
    with ProgressObserver(console) as observer:
        backend = _backend(args, console, observer)
        if args.resume:
            store = RunStore(resolve_run(args.results_dir, args.resume))
            manifest = store.read_manifest()
            if (
                manifest.get("matrix_sha256") != file_sha256(args.matrix)
                or manifest["profile"] != args.profile
            ):
                raise ConfigError(f"--resume {args.resume}: run was made from another matrix file or profile")
            run_id = str(manifest["run_id"])
        else:
            run_id = new_run_id(args.profile, time.time(), secrets.token_hex(3))
            store = RunStore(args.results_dir / run_id)
            manifest = {}
        observer.phase("build images")
        cells = prepare_cells(backend, loaded.cells)
        repeats = args.repeats or profile.repeats
        manifest = _manifest(args, loaded, cells, run_id, repeats, backend, manifest)
        store.write_manifest(manifest)
        jobs = plan_jobs(cells, repeats, store.done())
        runner = Runner(
            backend,
            store,
            run_id,
            args.timeout or profile.timeout_s,
            cpus=args.cpus or profile.cpus,
            mem_limit=args.memory or profile.mem_limit,
            observer=observer,
        )
        try:
            runner.run(jobs)
        except KeyboardInterrupt:
            removed = backend.cleanup()
            observer.progress.stop()
            done = len(store.done())
            console.print(
                f"[yellow]interrupted[/yellow]: {done} result(s) kept in {store.path}; "
                f"{removed} container(s) removed. Resume with: harness run --profile {args.profile} "
                f"--resume {run_id}"
            )
            return EXIT_INTERRUPTED
    manifest["finished_at"] = _now()
    store.write_manifest(manifest)
    records = list(store.iter_records())
    console.print(summary_table(records))
    console.print(f"results: {store.path}")
    if args.report:
        _render(store.path, args.reports_dir, None, console)
    return exit_code_for(records, args.strict)


def payload_sha256() -> str:
    """The payload's checksum, computed as the payload does (harness/payload/provenance.py)."""
    import hashlib

    from harness.paths import payload_dir

    digest = hashlib.sha256()
    for path in sorted(payload_dir().glob("*.py")):
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _now() -> str:
    from harness.runner import iso

    return iso(time.time())


def _manifest(
    args: argparse.Namespace,
    loaded: Loaded,
    cells: list[Cell],
    run_id: str,
    repeats: int,
    backend: Backend,
    previous: dict[str, Any],
) -> dict[str, Any]:
    engine = getattr(backend, "engine", None)
    version = engine.version() if engine is not None else None
    return {
        "schema_version": 1,
        "kind": "tfmh.run-manifest",
        "run_id": run_id,
        "profile": args.profile,
        "matrix_path": str(args.matrix),
        "matrix_sha256": file_sha256(args.matrix),
        "matrix_text": args.matrix.read_text(encoding="utf-8"),
        "command": " ".join(["harness", *sys.argv[1:]]),
        "harness_version": __version__,
        "payload_sha256": payload_sha256(),
        "runner": backend.kind,
        "host": host_facts(version),
        "baseline": loaded.plan.baseline,
        "cells": [c.describe() for c in cells],
        "repeats": repeats,
        "shard": args.shard,
        "started_at": previous.get("started_at") or _now(),
        "resumed_at": [*previous.get("resumed_at", []), _now()] if previous else [],
        "finished_at": None,
    }


# ----------------------------------------------------------------------------------------- report/compare


def _render(run_path: Path, reports_dir: Path, history_dir: Path | None, console: Console) -> Path:
    from harness.report import render_run_report, render_site_index
    from harness.store import list_runs, load_run

    run = load_run(run_path)
    history = []
    if history_dir is not None:
        history = [load_run(p) for p in list_runs(history_dir) if p.resolve() != run_path.resolve()]
    page = render_run_report(run, reports_dir, history=history)
    runs = [load_run(p) for p in list_runs(run_path.parent)]
    index = render_site_index(reports_dir, runs)
    console.print(f"report: {page}\nsite index: {index}", highlight=False)
    return page


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from harness.store import resolve_run

    _render(resolve_run(args.results_dir, args.run), args.reports_dir, args.history, console)
    return 0


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    from harness.compare import compare_runs
    from harness.store import load_run, resolve_run

    run_a = load_run(resolve_run(args.results_dir, args.run_a))
    run_b = load_run(resolve_run(args.results_dir, args.run_b))
    return compare_runs(run_a, run_b, args.fail_on_regression, console)


def cmd_merge(args: argparse.Namespace, console: Console) -> int:
    from harness.merge import merge_runs
    from harness.store import resolve_run

    sources = [resolve_run(args.results_dir, ref) for ref in args.runs]
    out = merge_runs(sources, args.results_dir, args.run_id)
    console.print(f"merged {len(sources)} run(s) into {out}", highlight=False)
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
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED
