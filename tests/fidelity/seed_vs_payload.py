"""Fidelity benchmark (run by hand, not part of `make test`/CI): does the payload's `mlp_fit` spend the same
time in `model.fit` as the seed article's own code, for the same work?

    tox -e fidelity                                  # the matrix's native TF 2.15 and TF 2.21 interpreters
    tox -e fidelity -- --rounds 5 --epochs 2
    python tests/fidelity/seed_vs_payload.py --python /path/to/tf/bin/python [--python ...]

Per interpreter and round it runs, in fresh processes and alternating which goes first:
  seed     the seed's code: its MLP (Sequential Flatten / Dense 512 relu / Dropout 0.2 / Dense 10 softmax,
           adam, sparse_categorical_crossentropy, accuracy), `x / 255.0` preprocessing (float64, as the seed
           does; --seed-dtype float32 to match the payload's arrays), `model.fit(x, y, epochs=E,
           batch_size=32)` with fit's defaults (progress bar; stdout is a pipe) timed with timeit.
  payload  harness/payload/run.py on an mlp_fit / numpy cell with the same model, size and batch; its
           phases_s.fit_total (the fit call), the sum of its epoch times and phases_s.fit_tail (last epoch
           end -> fit returned).
Both use synthetic 28x28 inputs with 10 classes (the work does not depend on the pixel values), the same
sample count and intra/inter-op threads 2/1 (the matrix defaults). The verdict per interpreter rests on the
median over rounds of payload fit_total / seed timeit and its 95% bootstrap CI: PASS when the CI lies inside
+-5% (--tolerance), FAIL when it lies wholly outside, INCONCLUSIVE when it straddles the band edge (the host's
round-to-round noise is larger than the tolerance: more rounds or a quieter host are needed).

Interpreters: --python PATH (repeatable), else TFMH_TF_PYTHONS (comma-separated) and/or TFMH_TF_PYTHONS_FILE
(one per line, as written by `python -m harness.images.nativeenv --out`) -- the same mechanism as the payload tests.
Run it on a quiet host: one TF process at a time, nothing else busy; the load average before and after is
printed. Exit 0 all PASS, 1 some FAIL, 2 usage, 3 none FAIL but some INCONCLUSIVE.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.matrix.params import merge, spec_params

REPO = Path(__file__).resolve().parents[2]
PAYLOAD = REPO / "harness" / "payload" / "run.py"
MARK = "TFMH-SEED-RESULT "

# The seed's code, parameterised only by size, epochs, threads and input dtype. Runs in the TF interpreter.
SEED_CODE = r"""
import json, os, sys, timeit
samples, epochs, intra, inter, dtype = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
import numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(intra)
tf.config.threading.set_inter_op_parallelism_threads(inter)
rs = np.random.RandomState(1234)
x_train = rs.randint(0, 256, size=(samples, 28, 28)).astype(np.uint8)  # mnist's dtype and shape
y_train = rs.randint(0, 10, size=samples).astype(np.uint8)
x_train = x_train / 255.0                                               # the seed's preprocessing (float64)
if dtype == "float32":
    x_train = x_train.astype(np.float32)
model = tf.keras.models.Sequential([
    tf.keras.layers.Flatten(input_shape=(28, 28)),
    tf.keras.layers.Dense(512, activation=tf.nn.relu),
    tf.keras.layers.Dropout(0.2),
    tf.keras.layers.Dense(10, activation=tf.nn.softmax),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
# the only addition to the seed: a timestamp at each epoch's end (no batch hooks, so Keras 2 and 3 run every
# step exactly as without it), to tell fit's own end-of-fit wait apart from the training
marks = []
stamp = tf.keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: marks.append(timeit.default_timer()))
def fit():
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, callbacks=[stamp])
    marks.append(timeit.default_timer())
seconds = timeit.timeit(fit, number=1)
tail = marks[-1] - marks[-2] if len(marks) >= 2 else None
print("%s%s" % (sys.argv[6], json.dumps({"seconds": seconds, "tail": tail, "tf": tf.__version__})), flush=True)
"""


def tf_pythons_from_env() -> list[str]:
    """Same sources as tests/payload/conftest.py: TFMH_TF_PYTHONS and TFMH_TF_PYTHONS_FILE."""
    raw = os.environ.get("TFMH_TF_PYTHONS", "").split(",")
    listing = os.environ.get("TFMH_TF_PYTHONS_FILE")
    if listing and os.path.exists(listing):
        raw += Path(listing).read_text().splitlines()
    return [p.strip() for p in raw if p.strip()]


def run_seed(python: str, args: argparse.Namespace) -> dict:
    cmd = [python, "-c", SEED_CODE, str(args.samples), str(args.epochs), "2", "1", args.seed_dtype, MARK]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    raise RuntimeError(f"seed run failed in {python} (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def run_payload(python: str, args: argparse.Namespace, workdir: Path) -> dict:
    # complete, from the parameter contract (the payload fills nothing in); warm-up/window as this
    # comparison has always used them
    params = merge(
        "mlp_fit",
        {
            "input": "numpy",
            "data": "synthetic",
            "batch_size": 32,
            "epochs": args.epochs,
            "train_samples": args.samples,
            "eval_samples": 1000,
            "warmup_steps": 20,
            "window_steps": 50,
            "seed": 1234,
            "intra_op_threads": 2,
            "inter_op_threads": 1,
        },
    )
    spec = {
        "spec_version": 1,
        "cell_id": "fidelity/mlp_fit-numpy",
        "workload": "mlp_fit",
        "device": "cpu",
        "data_dir": None,
        **spec_params("mlp_fit", params),
    }
    spec_path, out_path = workdir / "spec.json", workdir / "result.json"
    spec_path.write_text(json.dumps(spec))
    out_path.unlink(missing_ok=True)
    cmd = [python, str(PAYLOAD), "--spec", str(spec_path), "--out", str(out_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=False)
    doc = json.loads(out_path.read_text()) if out_path.exists() else None
    if proc.returncode != 0 or doc is None or doc["status"] != "ok":
        raise RuntimeError(f"payload run failed in {python} (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    phases = doc["phases_s"]
    if phases.get("fit_total") is None:
        raise RuntimeError(f"{python}: payload result has no phases_s.fit_total (schema_version 2 needed)")
    return {
        "fit_total": phases["fit_total"],
        "epochs": sum(doc["epochs"]["epoch_time_s"]),
        "fit_tail": phases["fit_tail"],
        "tf": doc["runtime"]["tf_version"],
    }


def measure(python: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    rounds = []
    for i in range(args.rounds):
        order = ("seed", "payload") if i % 2 == 0 else ("payload", "seed")
        row: dict = {}
        for which in order:
            if which == "seed":
                seed = run_seed(python, args)
                row["seed"], row["seed_tail"] = seed["seconds"], seed["tail"] or 0.0
            else:
                row.update(run_payload(python, args, workdir))
        row["ratio"] = row["fit_total"] / row["seed"]
        # the same work: fit without its end-of-fit wait (last epoch's end -> fit returned) on both sides
        row["work_ratio"] = (row["fit_total"] - row["fit_tail"]) / (row["seed"] - row["seed_tail"])
        rounds.append(row)
        print(
            f"  round {i + 1}/{args.rounds} ({' then '.join(order)}): seed {row['seed']:.2f} s "
            f"(tail {row['seed_tail']:.2f} s), payload fit_total {row['fit_total']:.2f} s "
            f"(tail {row['fit_tail']:.2f} s)",
            file=sys.stderr,
            flush=True,
        )
    return rounds


def median_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap CI of the median (fixed seed, so a re-print of the same rounds is identical)."""
    if len(values) < 3:
        return (float("-inf"), float("inf"))
    from scipy import stats  # the fidelity tox env installs the harness, which depends on scipy

    res = stats.bootstrap(
        (values,), statistics.median, confidence_level=confidence, method="percentile", random_state=1234
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def verdict(low: float, high: float, tolerance: float) -> str:
    if 1.0 - tolerance <= low and high <= 1.0 + tolerance:
        return "PASS"
    if high < 1.0 - tolerance or low > 1.0 + tolerance:
        return "FAIL"
    return "INCONCLUSIVE"


def table(results: dict[str, list[dict]], tolerance: float) -> tuple[str, list[str]]:
    lines, verdicts = [], []
    header = (
        f"{'interpreter / TF':<44} {'round':>5} {'seed timeit s':>13} {'seed tail s':>11} "
        f"{'payload fit_total s':>19} {'fit_tail s':>10} {'ratio':>6} {'work ratio':>10}"
    )
    lines += [header, "-" * len(header)]
    for python, rounds in results.items():
        label = f"{python[-30:]} TF {rounds[0]['tf']}"
        for i, r in enumerate(rounds):
            lines.append(
                f"{label if i == 0 else '':<44} {i + 1:>5} {r['seed']:>13.3f} {r['seed_tail']:>11.3f} "
                f"{r['fit_total']:>19.3f} {r['fit_tail']:>10.3f} {r['ratio']:>6.3f} {r['work_ratio']:>10.3f}"
            )
        ratios = [r["ratio"] for r in rounds]
        med, (low, high) = statistics.median(ratios), median_ci(ratios)
        work = statistics.median(r["work_ratio"] for r in rounds)
        verdicts.append(verdict(low, high, tolerance))
        tails = sum(r["seed_tail"] > 1.0 for r in rounds), sum(r["fit_tail"] > 1.0 for r in rounds)
        lines.append(
            f"{'':<44} median payload fit_total / seed timeit = {med:.3f}, 95% CI [{low:.3f}, {high:.3f}] "
            f"-> {verdicts[-1]} (tolerance {tolerance:.0%}; spread of the rounds {min(ratios):.3f}-{max(ratios):.3f})"
        )
        lines.append(
            f"{'':<44} median work ratio (both without the end-of-fit wait) = {work:.3f} "
            f"({'within' if abs(work - 1.0) <= tolerance else 'outside'} {tolerance:.0%}); "
            f"a wait above 1 s in {tails[0]}/{len(rounds)} seed and {tails[1]}/{len(rounds)} payload fits"
        )
    return "\n".join(lines), verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--python", action="append", default=[], help="TF interpreter (repeatable)")
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=0.05, help="PASS band for the median ratio")
    parser.add_argument("--seed-dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per process")
    args = parser.parse_args(argv)
    pythons = args.python or tf_pythons_from_env()
    if not pythons:
        parser.error("no TF interpreter: pass --python PATH or set TFMH_TF_PYTHONS / TFMH_TF_PYTHONS_FILE")
    if args.samples < 32 or args.epochs < 1 or args.rounds < 1:
        parser.error("--samples >= 32, --epochs >= 1 and --rounds >= 1 are needed")
    results = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tfmh-fidelity-") as tmp:
        for python in pythons:
            print(
                f"{python}: {args.rounds} round(s), {args.samples} samples x {args.epochs} epochs",
                file=sys.stderr,
            )
            results[python] = measure(python, args, Path(tmp))
    load_after = os.getloadavg()
    text, verdicts = table(results, args.tolerance)
    print(text)
    before, after = (" ".join(f"{x:.2f}" for x in load) for load in (load_before, load_after))
    print(f"load average (1, 5, 15 min): before {before}, after {after}")
    if "FAIL" in verdicts:
        return 1
    return 3 if "INCONCLUSIVE" in verdicts else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
