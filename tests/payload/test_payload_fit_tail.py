"""`fit_total` / `fit_tail` phases (schema_version 2): the whole `model.fit` call and the time from the end
of the last epoch to `fit` returning, recorded for the Keras fit workloads and null for the explicit loops.

In some runs `fit` spends time after its last epoch, idle, in the tf.data iterator destructor: it waits for
the autotune thread's current timed sleep to end (seen on TF 2.15 and TF 2.21; seconds at full size on TF
2.15). The seed's plain `model.fit` pays it too, so the payload records that tail rather than hiding it.
Tiny cells (a few hundred samples) keep this fast; each cell runs once per interpreter.
"""

import json

import pytest
from conftest import SCHEMA_PATH, tf_pythons
from test_payload_run import run_payload

pytestmark = [pytest.mark.tf, pytest.mark.skipif(not tf_pythons(), reason="no TF interpreter given")]

# A complete spec (the payload fills nothing in): each cell sets its workload and mode or input.
TINY = {
    "spec_version": 1,
    "cell_id": "fit-tail",
    "workload": None,
    "mode": None,
    "input": None,
    "device": "cpu",
    "data": "synthetic",
    "data_dir": None,
    "batch_size": 32,
    "epochs": 2,
    "steps_per_epoch": None,
    "train_samples": 320,
    "eval_samples": 64,
    "warmup_steps": 2,
    "window_steps": 4,
    "seed": 1234,
    "intra_op_threads": 2,
    "inter_op_threads": 1,
    "loop": None,
    "val_samples": None,
    "call": None,
    "calls": None,
    "build_ops": None,
}
FIT_CELLS = {
    "mlp_fit-numpy": {"workload": "mlp_fit", "input": "numpy"},
    "mlp_fit-tfdata": {"workload": "mlp_fit", "input": "tfdata"},
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fit-tail-runs")


def ok_doc(python, cell, workdir):
    proc, doc = run_payload(python, dict(TINY, **cell), workdir)
    assert doc is not None and proc.returncode == 0 and doc["status"] == "ok", proc.stderr[-3000:]
    return doc


@pytest.mark.parametrize("cell", sorted(FIT_CELLS))
@pytest.mark.parametrize("python", tf_pythons())
def test_fit_total_and_tail_recorded(python, cell, workdir):
    doc = ok_doc(python, FIT_CELLS[cell], workdir)
    assert doc["schema_version"] == 2
    phases = doc["phases_s"]
    fit_total, fit_tail, train_total = phases["fit_total"], phases["fit_tail"], phases["train_total"]
    epochs_sum = sum(doc["epochs"]["epoch_time_s"])
    assert fit_total is not None and fit_tail is not None, phases
    assert len(doc["epochs"]["epoch_time_s"]) == TINY["epochs"]
    # fit_total = head (data adapter, first iterator) + epochs + between-epoch work + tail
    assert fit_total >= epochs_sum, (fit_total, epochs_sum)
    assert 0 <= fit_tail <= fit_total - epochs_sum + 1e-6, (fit_tail, fit_total, epochs_sum)
    assert phases["first_step"] < fit_total
    # train_total keeps its meaning (Stopwatch around the fit call): the same interval plus clock reads
    assert fit_total <= train_total < fit_total + 0.05, (fit_total, train_total)
    # The tail is at most the tf.data teardown wait (the autotune thread's sleep doubles, so the wait is
    # bounded by about the time the iterator lived), never an extra epoch or the evaluation.
    assert fit_tail < 0.6 * fit_total + 0.05, (fit_tail, fit_total)


@pytest.mark.parametrize("python", tf_pythons())
def test_fit_phases_null_for_explicit_loops(python, workdir):
    doc = ok_doc(python, {"workload": "mlp_loop", "mode": "graph"}, workdir)
    assert doc["phases_s"]["fit_total"] is None and doc["phases_s"]["fit_tail"] is None
    assert doc["phases_s"]["train_total"] > 0


@pytest.mark.parametrize("python", tf_pythons())
def test_fit_phases_validate_against_v2_schema(python, workdir):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    assert SCHEMA_PATH.name == "payload-result.v2.json"
    for cell in [*FIT_CELLS.values(), {"workload": "mlp_loop", "mode": "graph"}]:
        doc = ok_doc(python, cell, workdir)
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]
        assert not errors, (cell, errors)
