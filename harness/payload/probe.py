"""Calibration probe: a fixed reference kernel that says how fast this host/container is right now.

    python3 run.py --probe --out RESULT.json

- float32 numpy matmul of a fixed size (MATMUL_N): timed reps of a batch of multiplications, each rep long
  enough (>= REP_TARGET_S) to span several CFS periods, so a CPU quota (--cpus) shows in the rate; the rate
  is 2 n^3 / median seconds per multiplication (GFLOP/s). BLAS threads come from the environment
  (OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS, else the library's default).
- a short single-thread pure-Python loop (Mops/s: loop iterations per microsecond).

Never imports TensorFlow; stdlib + numpy only; Python 3.6 grammar. About 1.5 s unconstrained, a few
seconds under a small CPU quota.
"""

import os
import time

from provenance import cpu_affinity

MATMUL_N = 512
#: each timed rep runs at least this long (>= one 100 ms CFS period)
REP_TARGET_S = 0.12
MATMUL_MIN_REPS = 3
MATMUL_BUDGET_S = 1.0
LOOP_ITERATIONS = 200000
LOOP_MIN_REPS = 3
LOOP_BUDGET_S = 0.4
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return 0.5 * (ordered[mid - 1] + ordered[mid])


def env_threads():
    """The BLAS thread count the environment asks for (first of THREAD_VARS that is a positive int)."""
    for name in THREAD_VARS:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def matmul(n=MATMUL_N, rep_target_s=REP_TARGET_S, min_reps=MATMUL_MIN_REPS, budget_s=MATMUL_BUDGET_S):
    """(GFLOP/s from the median rep, [seconds per multiplication of each rep], multiplications per rep)."""
    import numpy as np

    rng = np.random.RandomState(1234)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    c = np.empty((n, n), dtype=np.float32)
    np.dot(a, b, out=c)  # warm-up (BLAS thread pool start)
    t0 = time.perf_counter()
    for _ in range(3):  # sizes the batch
        np.dot(a, b, out=c)
    single = max((time.perf_counter() - t0) / 3, 1e-6)
    per_rep = max(1, int(round(rep_target_s / single)))
    reps = []
    started = time.perf_counter()
    while len(reps) < min_reps or time.perf_counter() - started < budget_s:
        t0 = time.perf_counter()
        for _ in range(per_rep):
            np.dot(a, b, out=c)
        reps.append((time.perf_counter() - t0) / per_rep)
        if len(reps) >= 50:
            break
    return 2.0 * n ** 3 / median(reps) / 1e9, reps, per_rep


def loop(iterations=LOOP_ITERATIONS, min_reps=LOOP_MIN_REPS, budget_s=LOOP_BUDGET_S):
    """Mops/s of a fixed integer loop in pure Python (single thread), median of the reps."""
    rates = []
    started = time.perf_counter()
    while len(rates) < min_reps or time.perf_counter() - started < budget_s:
        t0 = time.perf_counter()
        acc = 0
        for i in range(iterations):
            acc = (acc + i * i) & 0xFFFF
        rates.append(iterations / max(time.perf_counter() - t0, 1e-9) / 1e6)
        if len(rates) >= 20:
            break
    return median(rates)


def new_doc(started_at):
    return {
        "kind": "tfmh.probe", "schema_version": 1, "status": "failed",
        "matmul_n": MATMUL_N, "matmul_gflops": None, "matmul_reps_s": [], "matmul_per_rep": None,
        "loop_mops": None, "threads": env_threads(), "cpu_affinity": cpu_affinity(),
        "started_at": started_at, "finished_at": None, "error": None,
    }


def run(doc):
    """Fill the probe document in place (raises on failure; the caller records the error)."""
    gflops, reps, per_rep = matmul()
    doc["matmul_gflops"] = gflops
    doc["matmul_reps_s"] = reps
    doc["matmul_per_rep"] = per_rep
    doc["loop_mops"] = loop()
    doc["status"] = "ok"
    return doc
