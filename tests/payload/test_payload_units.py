"""Host-side unit tests of the TF-free payload modules (timing windows, spec validation, data, models)."""

import json

import numpy as np
import pytest


def expected_windows(steps_per_epoch, epochs, warmup, window):
    """Windows open after max(warmup, first step of the epoch) and never span an epoch boundary."""
    total = 0
    for epoch in range(epochs):
        first, last = epoch * steps_per_epoch + 1, (epoch + 1) * steps_per_epoch
        open_at = max(warmup, first)
        if open_at <= last:
            total += (last - open_at) // window
    return total


@pytest.mark.parametrize(
    "spe, epochs, warmup, window", [(64, 2, 5, 10), (10, 3, 25, 4), (7, 1, 0, 3), (50, 2, 0, 50)]
)
def test_window_timer_counts(payload_modules, spe, epochs, warmup, window):
    timer = payload_modules["timing"].WindowTimer(warmup, window)
    syncs = []
    for _ in range(epochs):
        timer.epoch_begin()
        for _ in range(spe):
            timer.step_end(lambda: syncs.append(1))
    assert len(timer.samples) == expected_windows(spe, epochs, warmup, window)
    assert len(timer.cpu_samples) == len(timer.samples)  # CPU seconds per step, window by window
    assert all(c >= 0 for c in timer.cpu_samples)
    assert timer.global_step == spe * epochs
    assert len(syncs) <= 2 * len(timer.samples) + epochs  # sync only at window edges


COMPLETE = {
    "spec_version": 1,
    "cell_id": "c",
    "workload": "mlp_loop",
    "mode": "eager",
    "input": None,
    "device": "cpu",
    "data": "synthetic",
    "data_dir": None,
    "batch_size": 32,
    "epochs": 1,
    "steps_per_epoch": None,
    "train_samples": 640,
    "eval_samples": 320,
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


def test_check_spec_accepts_a_complete_spec_as_is(payload_modules):
    cellspec, resultio = payload_modules["cellspec"], payload_modules["resultio"]
    spec = cellspec.check_spec(dict(COMPLETE))
    assert spec == COMPLETE and resultio.api_style(spec) == "tf2-eager"


@pytest.mark.parametrize("key", sorted(COMPLETE))
def test_check_spec_refuses_an_incomplete_spec(payload_modules, key):
    """The payload never fills in a default: every missing key is an error naming the key."""
    cellspec = payload_modules["cellspec"]
    spec = {k: v for k, v in COMPLETE.items() if k != key}
    with pytest.raises(
        cellspec.SpecError, match="spec_version" if key == "spec_version" else "missing " + key
    ):
        cellspec.check_spec(spec)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"spec_version": 2}, "spec_version"),
        ({"colour": "red"}, "unknown spec key"),
        ({"mode": None}, "spec.mode"),
        ({"mode": "jit"}, "spec.mode"),
        ({"input": "numpy"}, "spec.input applies to mlp_fit/cnn_fit/tiny_fit only"),
        ({"workload": "mlp_fit", "mode": None, "input": None}, "spec.input"),
        ({"workload": "mlp_fit", "input": "numpy"}, "spec.mode applies to mlp_loop only"),
        ({"workload": "resnet"}, "spec.workload"),
        ({"device": "tpu"}, "spec.device"),
        ({"cell_id": None}, "spec.cell_id"),
        ({"batch_size": 0}, "spec.batch_size"),
        ({"batch_size": True}, "spec.batch_size"),
        ({"window_steps": 0}, "spec.window_steps"),
        ({"warmup_steps": -1}, "spec.warmup_steps"),
        ({"steps_per_epoch": 0}, "spec.steps_per_epoch"),
        ({"seed": 2**31}, "spec.seed"),
        ({"data": "imagenet"}, "spec.data"),
        ({"data": "mnist"}, "data_dir"),
    ],
)
def test_check_spec_errors(payload_modules, change, message):
    cellspec = payload_modules["cellspec"]
    with pytest.raises(cellspec.SpecError, match=message):
        cellspec.check_spec(dict(COMPLETE, **change))
    assert cellspec.check_spec(dict(COMPLETE)) == COMPLETE  # the base case is valid


def test_write_atomic(payload_modules, tmp_path):
    out = tmp_path / "r.json"
    payload_modules["resultio"].write_atomic(str(out), {"a": np.float32(1.5), "b": [np.int64(2)]})
    assert json.loads(out.read_text()) == {"a": 1.5, "b": [2]}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_synthetic_is_learnable_and_seeded(payload_modules):
    data = payload_modules["data"]
    a = data.synthetic(2000, 500, seed=7)
    b = data.synthetic(2000, 500, seed=7)
    assert np.array_equal(a["x_train"], b["x_train"]) and a["x_train"].dtype == np.float32
    # class means estimated on train -> nearest-mean classifier on eval is far above chance (0.1)
    means = np.stack([a["x_train"][a["y_train"] == c].mean(0).ravel() for c in range(10)])
    dist = ((a["x_eval"].reshape(len(a["x_eval"]), 1, -1) - means[None]) ** 2).sum(-1)
    assert (dist.argmin(1) == a["y_eval"]).mean() > 0.5


def test_plan_steps(payload_modules):
    data = payload_modules["data"]
    assert data.plan_steps({"batch_size": 32, "steps_per_epoch": None, "train_samples": 60000}) == 1875
    with pytest.raises(ValueError, match="exceeds train_samples"):
        data.plan_steps({"batch_size": 32, "steps_per_epoch": 100, "train_samples": 64})


def test_mnist_missing_names_path(payload_modules, tmp_path):
    with pytest.raises(IOError, match=str(tmp_path / "mnist.npz")):
        payload_modules["data"].mnist(str(tmp_path), 10, 10)


def test_model_params_and_flops(payload_modules):
    models = payload_modules["models"]
    mlp = models.model_info(models.MLP)
    assert mlp == {
        "params": 784 * 512 + 512 + 512 * 10 + 10,
        "flops_per_sample_forward": 2 * (784 * 512 + 5120),
        "flops_per_sample_train": 6 * (784 * 512 + 5120),
    }
    cnn = models.model_info(models.CNN)
    conv = 2 * 9 * 1 * 32 * 26 * 26 + 2 * 9 * 32 * 64 * 11 * 11
    assert cnn["flops_per_sample_forward"] == conv + 2 * 1600 * 128 + 2 * 128 * 10
    assert cnn["params"] == (9 * 32 + 32) + (9 * 32 * 64 + 64) + (1600 * 128 + 128) + (1280 + 10)
    w1, w2 = models.initial_weights(models.MLP, 3), models.initial_weights(models.MLP, 3)
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2, strict=False)) and next(w.shape for w in w1) == (
        784,
        512,
    )


def test_new_result_has_null_fit_phases(payload_modules):
    doc = payload_modules["resultio"].new_result()
    assert doc["schema_version"] == 2
    assert doc["phases_s"]["fit_total"] is None and doc["phases_s"]["fit_tail"] is None


def test_window_cpu_time_per_step(payload_modules):
    timing = payload_modules["timing"]
    wall = iter(range(0, 1000, 10))  # 10 s per reading
    cpu = iter(range(0, 1000, 4))  # 4 CPU s per reading
    timer = timing.WindowTimer(1, 2, lambda: float(next(wall)), lambda: float(next(cpu)))
    timer.epoch_begin()
    for _ in range(5):
        timer.step_end(lambda: None)
    # window opens at step 1 (wall 0, cpu 0) and closes at step 3 (wall 10, cpu 4): 2 steps
    assert timer.samples == [5.0, 5.0] and timer.cpu_samples == [2.0, 2.0]


@pytest.mark.parametrize("input_kind, dtype", [("numpy", np.float64), ("tfdata", np.float32)])
def test_fit_gets_the_seeds_dtype_for_numpy_input(payload_modules, input_kind, dtype):
    """The seed fits `x_train / 255.0` (float64) and Keras converts it inside fit; the payload does the same
    work, so its numpy input is float64 too. tf.data input stays float32 (the pipeline's dtype)."""
    import keras_fit  # TF-free at import; lives beside the other payload modules

    arrays = payload_modules["data"].synthetic(64, 8, 1234)
    x, y = arrays["x_train"], arrays["y_train"]
    fx, fy = keras_fit.fit_inputs(arrays, {"input": input_kind})
    assert fx.dtype == dtype and fx.shape == x.shape and fy is y
    assert np.array_equal(fx.astype(np.float32), x)


class CfsMachine:
    """A fake clock and workload under a CFS quota: each 100 ms period grants `quota_s` of run time; a call
    needs `cost_s` of run time; the run starts with the period's budget nearly spent by the interpreter's
    start-up (`left_calls` calls' worth left), so the first calls straddle a throttled stretch."""

    PERIOD_S = 0.1

    def __init__(self, cost_s, quota_s=None, left_calls=1.5):
        self.now = 0.05
        self.cost_s = cost_s
        self.quota_s = quota_s
        self.budget = left_calls * cost_s if quota_s is not None else float("inf")

    def clock(self):
        return self.now

    def _next_period(self):
        self.now = (int(self.now / self.PERIOD_S + 1e-9) + 1) * self.PERIOD_S
        self.budget = self.quota_s

    def work(self):
        need = self.cost_s
        while need > 1e-12:
            if self.budget <= 1e-12:
                self._next_period()
            run = min(
                need, self.budget, (int(self.now / self.PERIOD_S + 1e-9) + 1) * self.PERIOD_S - self.now
            )
            if run <= 1e-12:  # period over with budget left: a fresh period
                self._next_period()
                continue
            self.now += run
            self.budget -= run
            need -= run


@pytest.mark.parametrize("cost_s", [0.0013, 0.0027, 0.004, 0.02])  # fast to slow hosts
def test_probe_reps_see_a_cpu_quota_whatever_the_host_speed(payload_modules, cost_s):
    probe = payload_modules["probe"]

    def rate(machine):
        reps, calls = probe.timed_reps(machine.work, clock=machine.clock)
        assert len(reps) >= probe.MATMUL_MIN_REPS and min(calls) >= 1
        return 1.0 / probe.median(reps)

    free = rate(CfsMachine(cost_s))
    assert free == pytest.approx(1.0 / cost_s)
    quota = rate(CfsMachine(cost_s, quota_s=0.03))  # --cpus 0.3
    assert 0.15 < quota / free < 0.45  # the quota's 30% share, within a period's granularity


class _Keras34Model:
    """test_on_batch as Keras 3.4-3.6 has it (raises StopIteration); evaluate works."""

    def __init__(self):
        self.evaluated = []

    def test_on_batch(self, x, y):
        raise StopIteration

    def evaluate(self, x, y, batch_size=None, verbose=1):
        self.evaluated.append((len(x), batch_size, verbose))
        return [2.30, 0.1]


class _KerasModel:
    def test_on_batch(self, x, y):
        return [2.31, 0.1]


def test_initial_loss_survives_the_keras_34_test_on_batch_bug(payload_modules):
    import keras_fit

    x, y = np.zeros((32, 4)), np.zeros(32)
    model = _Keras34Model()
    assert keras_fit.batch_loss(model, x, y) == pytest.approx(2.30)
    assert model.evaluated == [(32, 32, 0)]  # one batch, silently
    assert keras_fit.batch_loss(_KerasModel(), x, y) == pytest.approx(2.31)
