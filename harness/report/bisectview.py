"""The run page's bisection section (a `harness bisect` run folder): the cell, the releases searched, the
answer and every probe with its evidence, from `<run>/bisect.json`. Plain values, no jinja2."""

from __future__ import annotations

from typing import Any

from harness.results.bisectdoc import read_bisect
from harness.results.store import RunData

Doc = dict[str, Any]


def bisect_context(run: RunData) -> Doc | None:
    """None when the run is not a bisection."""
    doc = read_bisect(run.path)
    if doc is None:
        return None
    cell = doc["cell"]
    return {
        **doc,
        "params_label": ", ".join(f"{k}={v}" for k, v in sorted(cell["params"].items())),
        "limit": 1 + float(doc["threshold_pct"]) / 100,
        "probed": {p["release"]: p["decision"] for p in doc["probes"]},
    }
