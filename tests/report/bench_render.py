"""Benchmark: statistics + HTML rendering for 10,000 synthetic cell records (a script, not a test).

    .venv/bin/python tests/report/bench_render.py [N_RECORDS]

Builds the records in memory (20 images x 6 workload variants x ~28 batch sizes x 3 repeats, plus a few
failed/unavailable cells), then times `analysis.analyse_run` alone, `report.render_run_report` without a stored
analysis (statistics again, then render) into a temporary folder, and the render again once the analysis is
stored (`analysis.json`: what a finished run has). Target: < 2 s for the full report of 10,000 records.
"""

from __future__ import annotations

import copy
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from harness import analysis  # noqa: E402
from harness.analysis import stored  # noqa: E402
from harness.report import html as report  # noqa: E402
from harness.results.store import RunData, load_run  # noqa: E402

#: the recorded fixture run whose records are the templates (tests/fixtures/make_fixtures.py)
TEMPLATE_RUN = ROOT / "tests" / "fixtures" / "runs" / "20261126T142000Z-fixture-3f2a00"


def synthetic_run(n_records: int, seed: int = 7) -> RunData:
    rng = random.Random(seed)
    template = load_run(TEMPLATE_RUN)
    manifest = {**template.manifest, "run_id": "20261201T000000Z-bench-000000"}
    template_records = template.records
    ok = [r for r in template_records if r["status"] == "ok" and not r.get("rerun")]
    bad = [r for r in template_records if r["status"] != "ok"][:4]
    images = [f"tf2.{minor}-py3.{py}" for minor in range(2, 22) for py in (11,)]
    records = []
    i = 0
    while len(records) < n_records - len(bad):
        image = images[i % len(images)]
        base = ok[(i // len(images)) % len(ok)]
        bs = 16 * (1 + (i // (len(images) * len(ok))) % 28)
        variant = (i // len(images)) % len(ok)
        for rep in range(3):
            rec = copy.deepcopy(base)
            params = dict(rec["cell"]["params"], batch_size=bs, variant=variant)
            cid = f"{image}-cpu/{rec['cell']['workload']}-v{variant}/bs{bs}"
            rec.update(cell_id=cid, repeat=rep)
            rec["cell"].update(image=image, params=params)
            scale = 1 + 0.02 * (i % len(images)) + rng.gauss(0, 0.01)
            rec["payload"]["steps"]["step_time_s"] = [
                t * scale for t in rec["payload"]["steps"]["step_time_s"]
            ]
            rec["payload"]["spec"]["batch_size"] = bs
            records.append(rec)
        i += 1
    manifest["baseline"] = images[0]
    manifest["cells"] = []
    return RunData(path=Path("."), manifest=manifest, records=records[: n_records - len(bad)] + bad)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    run = synthetic_run(n)
    c0, t0 = time.process_time(), time.perf_counter()
    ana = analysis.analyse_run(run)
    c1, t1 = time.process_time(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = report.render_run_report(run, Path(tmp))
        c2, t2 = time.process_time(), time.perf_counter()
        size = path.stat().st_size
        run.path = Path(tmp)
        stored.refresh(run)
        c3, t3 = time.process_time(), time.perf_counter()
        report.render_run_report(run, Path(tmp) / "again")
        c4, t4 = time.process_time(), time.perf_counter()
    cells = len(ana.cells.stats)
    print(f"records: {len(run.records)}  cells: {cells}  comparisons: {len(ana.comparisons)}")
    print(f"stats only:             wall {t1 - t0:.3f} s, cpu {c1 - c0:.3f} s")
    print(f"stats + render + write: wall {t2 - t1:.3f} s, cpu {c2 - c1:.3f} s  (HTML {size / 1e6:.1f} MB)")
    print(f"render from the stored analysis: wall {t4 - t3:.3f} s, cpu {c4 - c3:.3f} s")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
