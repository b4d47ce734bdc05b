"""The timeline of a run over TF releases: per (device, workload, parameters), the step time (with its CI)
and the peak memory of each image ordered by TF version, the Keras major version each release ships
(TensorFlow's tested configurations, docker/compat.yaml), and every release-to-release change (ratio of the
later image's step time to the earlier one's, its CI and verdict: `comparisons.compare_pairs`, the one
definition, contended executions excluded as everywhere).

A series is kept only when its measured cells span at least `MIN_RELEASES` TF minor versions: with two a
run's comparisons say all there is.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.analysis import verdicts
from harness.analysis.cells import CellTable
from harness.analysis.comparisons import compare_pairs
from harness.analysis.document import TimelineChange, TimelinePoint, TimelineSeries
from harness.errors import ConfigError
from harness.matrix.testedconfigs import load_table

MIN_RELEASES = 3


def version_key(tf: str) -> tuple[int, ...]:
    """'2.12.1' -> (2, 12, 1); a malformed version sorts last."""
    try:
        return tuple(int(x) for x in str(tf).split("."))
    except ValueError:
        return (1 << 30,)


def minor_of(tf: str) -> str:
    return ".".join(str(tf).split(".")[:2])


def keras_majors() -> dict[str, int]:
    """TF minor -> the Keras major version it ships ({} when the table cannot be read)."""
    try:
        return {tf: row.keras for tf, row in load_table().items()}
    except ConfigError:
        return {}


def _num(x: object) -> float:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else math.nan


def _points(group: pd.DataFrame, keras: dict[str, int]) -> list[TimelinePoint]:
    rows = sorted(
        group.reset_index().to_dict("records"), key=lambda r: (version_key(r["declared_tf"]), r["image"])
    )
    return [
        TimelinePoint(
            cell_id=str(r["cell_id"]),
            image=str(r["image"]),
            tf=str(r["declared_tf"]),
            tf_minor=minor_of(r["declared_tf"]),
            keras=keras.get(minor_of(r["declared_tf"])),
            step_s=_num(r["step_s"]),
            ci_lo_s=_num(r["ci_lo_s"]),
            ci_hi_s=_num(r["ci_hi_s"]),
            n_exec=int(r["n_exec"]),
            container_peak_bytes=_num(r["container_peak_bytes"]),
            host_peak_rss_bytes=_num(r["host_peak_rss_bytes"]),
        )
        for r in rows
    ]


def _changes(cells: CellTable, points: list[TimelinePoint], margin_pct: float) -> list[TimelineChange]:
    if len(points) < 2:
        return []
    pairs = pd.DataFrame(
        {"a_cell": [p.cell_id for p in points[:-1]], "b_cell": [p.cell_id for p in points[1:]]}
    )
    out = compare_pairs(cells, cells, pairs, margin_pct)
    by_id = {p.cell_id: p for p in points}
    changes = []
    for row in out.to_dict("records"):
        a, b = by_id[str(row["a_cell"])], by_id[str(row["b_cell"])]
        ratio, lo, hi = _num(row["ratio"]), _num(row["ratio_lo"]), _num(row["ratio_hi"])
        changes.append(
            TimelineChange(
                a_cell=a.cell_id,
                b_cell=b.cell_id,
                a_image=a.image,
                b_image=b.image,
                a_tf=a.tf,
                b_tf=b.tf,
                ratio=ratio,
                ratio_lo=lo,
                ratio_hi=hi,
                kind=verdicts.classify(ratio, lo, hi, margin_pct),
                verdict=verdicts.wording(b.image, a.image, ratio, lo, hi, margin_pct),
                a_n_exec=int(row["a_n_exec"]),
                b_n_exec=int(row["b_n_exec"]),
                keras_boundary=a.keras is not None and b.keras is not None and a.keras != b.keras,
            )
        )
    return changes


def timeline(cells: CellTable, margin_pct: float) -> list[TimelineSeries]:
    """Every series of measured cells spanning at least MIN_RELEASES TF minor versions."""
    st = cells.stats[cells.stats["measured"]] if len(cells.stats) else cells.stats
    if st.empty:
        return []
    keras = keras_majors()
    series = []
    for (device, workload, key), group in st.groupby(["device", "workload", "params_key"], sort=True):
        if len({minor_of(tf) for tf in group["declared_tf"]}) < MIN_RELEASES:
            continue
        points = _points(group, keras)
        first = group.iloc[0]
        series.append(
            TimelineSeries(
                device=str(device),
                workload=str(workload),
                params_key=str(key),
                params_label=str(first["params_label"]),
                params_short=str(first["params_short"]),
                points=points,
                changes=_changes(cells, points, margin_pct),
            )
        )
    return series
