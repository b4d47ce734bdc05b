"""`harness bisect` on the terminal: the cell and bracket, one line per probe (release, executions, ratio
and CI against the good release, decision), then the answer and where the evidence is stored."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from harness.analysis.verdicts import TIMES
from harness.execution.bisect import BisectResult

Doc = dict[str, Any]
DECISION_STYLE = {
    "regressed": "bold red",
    "not regressed": "green",
    "inconclusive": "yellow",
    "skipped": "dim",
}
ANSWER_STYLE = {"found": "bold red", "no regression": "bold green", "inconclusive": "bold yellow"}


def _ratio(p: Doc) -> str:
    if p.get("ratio") is None:
        return "-"
    lo, hi = p.get("ratio_lo"), p.get("ratio_hi")
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"{p['ratio']:.3f}{TIMES}{ci}"


def probe_table(doc: Doc) -> Table:
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    for name, justify in (
        ("#", "right"),
        ("TF", "left"),
        ("why", "left"),
        ("executions", "right"),
        ("ratio vs good [95% CI]", "right"),
        ("decision", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for p in doc.get("probes") or []:
        reused = f" (+{len(p['good_reused'])} reused)" if p.get("good_reused") else ""
        table.add_row(
            str(p["index"] + 1),
            str(p["release"]),
            str(p["purpose"]),
            f"{p['n_probed']} vs {p['n_good']}{reused}",
            _ratio(p),
            Text(str(p["decision"]), style=DECISION_STYLE.get(str(p["decision"]), "")),
        )
    return table


def bisect_summary(result: BisectResult) -> Group:
    doc = result.doc
    cell = doc["cell"]
    params = ", ".join(f"{k}={v}" for k, v in sorted(cell["params"].items()))
    head = Text.assemble(
        ("bisect ", "bold"),
        f"{cell['workload']} on {cell['device']} ({params})\n",
        f"  TF {doc['good']} (good) … TF {doc['bad']} (bad), {len(doc['releases'])} releases; "
        f"regressed = step-time ratio CI above +{doc['threshold_pct']:g}% vs TF {doc['good']}; "
        f"{doc['min_repeats']} to {doc['max_repeats']} executions per probe",
    )
    answer = doc.get("answer")
    if result.interrupted or answer is None:
        tail = Text("interrupted: the probes so far are kept in bisect.json", style="yellow")
    else:
        tail = Text.assemble(
            (f"{answer['kind']}: ", ANSWER_STYLE.get(answer["kind"], "bold")), answer["text"]
        )
    where = Text(f"results: {result.path} (bisect.json, records, analysis.json)", style="dim")
    return Group(head, probe_table(doc), tail, where)
