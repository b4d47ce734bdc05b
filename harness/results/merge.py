"""`harness merge`: combine runs from several hosts or shards into one run folder.

Every source is read (and validated) before anything is written; the merged run is written into a hidden
temporary folder inside the results folder and renamed into place at the end, so a merge that fails half
way leaves nothing behind. `finish` (the CLI passes the analysis step) completes the merged folder before
the rename, so the merged run appears with its analysis stored.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import ResultError
from harness.results.store import RunStore, load_run
from harness.safenames import checked_name, slug
from harness.timestamps import utc_compact, utc_iso


def _merged_manifest(manifests: list[dict[str, Any]], run_id: str, sources: list[Path]) -> dict[str, Any]:
    first = manifests[0]
    cells: dict[str, dict[str, Any]] = {}
    for manifest in manifests:
        for cell in manifest.get("cells", []):
            cells.setdefault(cell["cell_id"], cell)
    hosts = {m["host"].get("hostname"): m["host"] for m in manifests if m.get("host")}
    return {
        **first,
        "run_id": run_id,
        "cells": [cells[k] for k in sorted(cells)],
        "shard": None,
        "merged_from": [
            {"run_id": m["run_id"], "path": str(p), "shard": m.get("shard")}
            for m, p in zip(manifests, sources, strict=True)
        ],
        "hosts": list(hosts.values()),
        "started_at": min(m["started_at"] for m in manifests),
        "finished_at": max((m.get("finished_at") or "") for m in manifests) or None,
    }


def _default_id(profile: str) -> str:
    return f"{utc_compact(time.time())}-merged-{slug(profile)[:60]}"


def merge_runs(
    sources: list[Path],
    results_dir: Path,
    run_id: str | None = None,
    finish: Callable[[Path], object] | None = None,
) -> Path:
    """Write a new run folder holding every record of `sources`. The sources must come from the same
    matrix, profile and ``--param`` values; a (cell, repeat) present in two sources is a conflict (nothing
    is written)."""
    if run_id is not None:
        checked_name(run_id, "--run-id")
    runs = [load_run(p) for p in sources]
    profiles = {
        (m["matrix_sha256"], m["profile"], json.dumps(m.get("params") or {}, sort_keys=True))
        for m in (r.manifest for r in runs)
    }
    if len(profiles) > 1:
        raise ResultError(
            f"cannot merge runs from different matrices/profiles/--param values: {sorted(profiles)}"
        )
    seen: dict[tuple[str, int, int | None], str] = {}
    for run in runs:
        for record in run.records:
            attempt = int(record.get("attempt") or 0) if record.get("rerun") else None
            key = (record["cell_id"], int(record["repeat"]), attempt)
            if key in seen:
                raise ResultError(
                    f"{key[0]} repeat {key[1]} is in both {seen[key]} and {run.run_id}; merge combines "
                    "disjoint shards or hosts (rerun one of them with other repeats)"
                )
            seen[key] = run.run_id
    new_id = checked_name(run_id or _default_id(str(runs[0].manifest["profile"])))
    final = results_dir / new_id
    if final.exists() or final.is_symlink():
        raise ResultError(f"{final}: a run with this id exists already")
    results_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".merge-{new_id}.", dir=results_dir))
    try:
        store = RunStore(tmp)
        for run in runs:
            for record in run.records:
                store.write_record({**record, "run_id": new_id})
        index = 0
        for run in runs:  # probes keep their order per source; each source's drift is read against its own
            for probe in run.probes:
                store.write_probe({**probe, "index": index, "run_id": new_id, "source_run_id": run.run_id})
                index += 1
        manifest = _merged_manifest([r.manifest for r in runs], new_id, sources)
        manifest["merged_at"] = utc_iso(time.time())
        store.write_manifest(manifest)
        if finish is not None:
            finish(tmp)
        if final.exists() or final.is_symlink():
            raise ResultError(f"{final}: a run with this id exists already")
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
