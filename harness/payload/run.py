#!/usr/bin/env python3
"""tf-matrix-harness benchmark payload.

    python3 run.py --spec SPEC.json --out RESULT.json
    python3 run.py --probe --out RESULT.json      (calibration probe: numpy only, never imports TF)

Runs one matrix cell inside any image (Python 3.6+ with TF 1.15, or Python 3.9-3.13 with TF 2.5-2.21)
and writes the result document atomically (docs/contracts.md section 2). Imports only stdlib, numpy and
tensorflow. Exit status: 0 ok, 1 the cell failed (result has status=failed and error), 2 bad command
line, 3 the result could not be written.
"""


import timing

INTERPRETER_S = timing.process_age_s()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402

import cellspec  # noqa: E402
import resultio  # noqa: E402

PAYLOAD_DIR = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    parser = argparse.ArgumentParser(description="tf-matrix-harness payload: run one benchmark cell")
    parser.add_argument("--spec", help="cell spec JSON (spec_version 1); required unless --probe")
    parser.add_argument("--out", required=True, help="where to write the result JSON (atomically)")
    parser.add_argument("--probe", action="store_true",
                        help="run the calibration probe (numpy matmul + Python loop) instead of a cell")
    args = parser.parse_args(argv)
    if not args.probe and not args.spec:
        parser.error("--spec is required (unless --probe)")
    return args


def import_tensorflow(phases):
    with timing.Stopwatch(phases, "import"):
        import tensorflow as tf
    return tf


def workload_module(tf, spec):
    """Pick the workload implementation; reject combinations this TF cannot run."""
    import tfsetup
    if spec["workload"] == "tiny_fit":
        if spec["loop"] == "graph":
            import tiny_graph
            return tiny_graph
        import tiny_fit
        return tiny_fit
    if spec["workload"] == "call_overhead":
        import call_overhead  # refuses call=call/function on TF 1.x before timing anything
        return call_overhead
    if spec["workload"] != "mlp_loop":
        import keras_fit
        return keras_fit
    if spec["mode"] == "graph":
        import tf1_graph
        return tf1_graph
    if not tfsetup.is_tf2(tf):
        raise RuntimeError("mlp_loop mode=%s needs TensorFlow 2.x (tf.function / eager training loop); "
                           "this is TensorFlow %s -- use mode=graph" % (spec["mode"], tf.__version__))
    import tf2_loops
    return tf2_loops


def run_cell(spec, doc):
    import tfsetup
    tfsetup.prepare_environment(spec)
    phases = doc["phases_s"]
    tf = import_tensorflow(phases)
    tfsetup.configure(tf, spec)
    import provenance
    doc["runtime"] = provenance.collect(tf, spec, PAYLOAD_DIR)
    module = workload_module(tf, spec)
    import data
    with timing.Stopwatch(phases, "data"):
        arrays = data.load(spec)
    module.run(tf, spec, arrays, doc)


def summary_line(doc):
    runtime = doc.get("runtime") or {}
    line = "tfmh-payload: status=%s cell=%s api_style=%s tf=%s throughput=%s" % (
        doc["status"], doc.get("cell_id"), doc.get("api_style"), runtime.get("tf_version"),
        doc.get("throughput_samples_per_s"))
    if doc.get("error"):
        line += " error=%s: %s" % (doc["error"]["type"], doc["error"]["message"])
    return line


def run_probe(out):
    """The calibration probe (probe.py): never imports TensorFlow. Exit 0 ok, 1 failed, 3 unwritable."""
    import probe
    doc = probe.new_doc(resultio.utc_now())
    try:
        probe.run(doc)
    except BaseException as exc:  # noqa: B902 -- any failure (incl. KeyboardInterrupt) is reported
        doc["status"] = "failed"
        doc["error"] = resultio.error_doc(exc)
        sys.stderr.write(doc["error"]["traceback"])
    doc["finished_at"] = resultio.utc_now()
    try:
        resultio.write_atomic(out, doc)
    except Exception as exc:  # noqa: BLE001
        sys.stderr.write("tfmh-payload: cannot write probe result to %s: %r\n" % (out, exc))
        return 3
    print("tfmh-probe: status=%s matmul_gflops=%s loop_mops=%s" % (
        doc["status"], doc["matmul_gflops"], doc["loop_mops"]))
    return 0 if doc["status"] == "ok" else 1


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.probe:
        return run_probe(args.out)
    doc = resultio.new_result()
    doc["phases_s"]["interpreter"] = INTERPRETER_S
    try:
        spec = cellspec.load_spec(args.spec)
        doc["spec"], doc["cell_id"], doc["api_style"] = spec, spec["cell_id"], resultio.api_style(spec)
        run_cell(spec, doc)
        doc["status"] = "ok"
    except BaseException as exc:  # noqa: B902 -- any failure (incl. KeyboardInterrupt) is reported
        doc["status"] = "failed"
        doc["error"] = resultio.error_doc(exc)
        sys.stderr.write(doc["error"]["traceback"])
    doc["memory"]["host_peak_rss_bytes"] = timing.host_peak_rss_bytes()
    doc["finished_at"] = resultio.utc_now()
    try:
        resultio.write_atomic(args.out, doc)
    except Exception as exc:  # noqa: BLE001
        sys.stderr.write("tfmh-payload: cannot write result to %s: %r\n" % (args.out, exc))
        return 3
    print(summary_line(doc))
    return 0 if doc["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
