"""Trends of cells over earlier runs, and regressions against the previous run of each cell (the same
definition as `harness compare`: the CI, widened by the host's own change between the runs as the calibration
probes measured it, has its lower bound of the slowdown beyond the threshold). A cell is followed only
through runs that gave it the same parameters: a run at another size (`--param epochs=1`, an edited matrix)
is other work under the same cell id, never a trend or a regression."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import pandas as pd

from harness.analysis.cells import CellTable
from harness.analysis.comparisons import compare_pairs, regressed
from harness.analysis.probes import Drift, host_change, widen
from harness.matrix.params import merge

HISTORY_THRESHOLD_PCT = 5.0


class HasCells(Protocol):
    @property
    def run_id(self) -> str: ...

    @property
    def payload_sha256(self) -> str | None: ...

    cells: CellTable
    drift: Drift


def payload_changed(a: str | None, b: str | None) -> bool:
    """Two runs ran different payloads (manifest sha256; unknown on either side: not known to differ)."""
    return a is not None and b is not None and a != b


def _params(ana: HasCells, cell: str) -> dict[str, object] | None:
    """The cell's parameters in that run, contract defaults filled in (a run made before a parameter
    existed ran its default); None: the run did not hold it."""
    stats = ana.cells.stats
    if cell not in stats.index:
        return None
    return merge(str(stats.at[cell, "workload"]), json.loads(str(stats.at[cell, "params_key"])))


def history_trends(current: HasCells, history: Sequence[HasCells]) -> pd.DataFrame:
    """Step time (with CI) per cell of the current run over all runs holding it, oldest first."""
    runs = [h for h in history if h.run_id != current.run_id] + [current]
    frames = []
    for ana in runs:
        st = ana.cells.stats[ana.cells.stats["measured"]]
        frames.append(
            pd.DataFrame(
                {
                    "run_id": ana.run_id,
                    "cell_id": st.index,
                    "step_s": st["step_s"].to_numpy(),
                    "ci_lo_s": st["ci_lo_s"].to_numpy(),
                    "ci_hi_s": st["ci_hi_s"].to_numpy(),
                }
            )
        )
    trends = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if trends.empty:
        return trends
    keep = set(current.cells.stats.index[current.cells.stats["measured"]])
    trends = trends[trends["cell_id"].isin(keep)]
    if trends.empty:
        return trends.reset_index(drop=True)
    by_id = {ana.run_id: ana for ana in runs}
    same = [
        _params(by_id[run], cell) == _params(current, cell)
        for run, cell in zip(trends["run_id"], trends["cell_id"], strict=True)
    ]
    trends = trends[np.asarray(same, dtype=bool)]
    return trends.sort_values(["cell_id", "run_id"], kind="stable").reset_index(drop=True)


def history_regressions(
    current: HasCells, history: Sequence[HasCells], threshold_pct: float = HISTORY_THRESHOLD_PCT
) -> pd.DataFrame:
    """Each measured cell of the current run against the newest earlier run that measured it."""
    cols = ["cell_id", "prev_run_id", "prev_step_s", "step_s", "change_pct", "ratio_lo", "ratio_hi", "status"]
    cols.append("host_widened_pct")
    earlier = sorted((h for h in history if h.run_id < current.run_id), key=lambda h: h.run_id)
    rows = []
    hosts = {h.run_id: host_change(h.drift, current.drift) for h in earlier}  # once per earlier run
    for cell in sorted(current.cells.executions):
        want = _params(current, cell)
        prev = next(
            (h for h in reversed(earlier) if cell in h.cells.executions and _params(h, cell) == want), None
        )
        if prev is None:
            continue
        comp = compare_pairs(prev.cells, current.cells, pd.DataFrame({"a_cell": [cell], "b_cell": [cell]}))
        host = hosts[prev.run_id]
        lo, hi = widen(float(comp["ratio_lo"].iloc[0]), float(comp["ratio_hi"].iloc[0]), host)
        comp = comp.assign(ratio_lo=[lo], ratio_hi=[hi])
        r = comp.iloc[0]
        slower = bool(regressed(comp, threshold_pct).iloc[0])
        faster = bool(regressed(comp.assign(ratio_lo=1 / comp["ratio_hi"]), threshold_pct).iloc[0])
        # a different payload measures differently: its change is the harness's, never TF's regression
        changed = payload_changed(prev.payload_sha256, current.payload_sha256)
        rows.append(
            {
                "cell_id": cell,
                "prev_run_id": prev.run_id,
                "prev_step_s": float(prev.cells.executions[cell].mean()),
                "step_s": float(current.cells.executions[cell].mean()),
                "change_pct": (float(r["ratio"]) - 1) * 100,
                "ratio_lo": float(r["ratio_lo"]),
                "ratio_hi": float(r["ratio_hi"]),
                "status": (
                    "payload changed"
                    if changed
                    else ("regression" if slower else ("improvement" if faster else "unchanged"))
                ),
                "host_widened_pct": host.widen_pct,
            }
        )
    return pd.DataFrame(rows, columns=cols)
