"""Calibration probe: a fixed reference kernel that says how fast this host/container is right now.

    python3 run.py --probe --out RESULT.json

- float32 numpy matmul of a fixed size (MATMUL_N): timed reps, each multiplying until at least
  REP_TARGET_S of wall time has passed (several CFS periods), so a CPU quota (--cpus) shows in the rate; the
  rate is 2 n^3 / median seconds per multiplication (GFLOP/s). BLAS threads come from the environment
  (OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS, else the library's default).
- a short single-thread pure-Python loop (Mops/s: loop iterations per microsecond).

Never imports TensorFlow; stdlib + numpy only; Python 3.6 grammar. About 1.5 s with or without a CPU quota
(the reps are bounded by wall time).
"""

import os
import time

from provenance import cpu_affinity

MATMUL_N = 512
#: each timed rep runs at least this long (two and a half 100 ms CFS periods)
REP_TARGET_S = 0.25
MATMUL_MIN_REPS = 3
MATMUL_BUDGET_S = 1.0
LOOP_ITERATIONS = 20000
LOOP_MIN_REPS = 3
LOOP_BUDGET_S = 0.5
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


def timed_reps(work, rep_target_s=REP_TARGET_S, min_reps=MATMUL_MIN_REPS, budget_s=MATMUL_BUDGET_S,
               clock=time.perf_counter, max_reps=50):
    """([seconds per call of each rep], [calls in each rep]): every rep calls `work` until at least
    `rep_target_s` of wall time has passed, so a rep spans CFS periods whatever the host's speed.

    A rep sized by a call count measured up front is not enough: under a CPU quota the sizing calls may
    land in a throttled period (the interpreter's start-up spends the first budget), the count comes out
    small, and every later rep fits inside one period's budget and reports the unthrottled rate."""
    per_call, calls = [], []
    started = clock()
    while len(per_call) < min_reps or clock() - started < budget_s:
        t0 = clock()
        n = 0
        while True:
            work()
            n += 1
            elapsed = clock() - t0
            if elapsed >= rep_target_s:
                break
        per_call.append(elapsed / n)
        calls.append(n)
        if len(per_call) >= max_reps:
            break
    return per_call, calls


def matmul(n=MATMUL_N):
    """(GFLOP/s from the median rep, [seconds per multiplication of each rep], fewest multiplications in a rep)."""
    import numpy as np

    rng = np.random.RandomState(1234)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    c = np.empty((n, n), dtype=np.float32)
    np.dot(a, b, out=c)  # warm-up (BLAS thread pool start)
    reps, calls = timed_reps(lambda: np.dot(a, b, out=c))
    return 2.0 * n ** 3 / median(reps) / 1e9, reps, min(calls)


def count_loop(iterations=LOOP_ITERATIONS):
    acc = 0
    for i in range(iterations):
        acc = (acc + i * i) & 0xFFFF
    return acc


def loop(iterations=LOOP_ITERATIONS, min_reps=LOOP_MIN_REPS, budget_s=LOOP_BUDGET_S):
    """Mops/s of a fixed integer loop in pure Python (single thread), median of wall-time-bounded reps."""
    reps, _ = timed_reps(lambda: count_loop(iterations), min_reps=min_reps, budget_s=budget_s, max_reps=20)
    return iterations / max(median(reps), 1e-9) / 1e6


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
