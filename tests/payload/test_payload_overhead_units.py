"""TF-free parts of the overhead workloads (host interpreter): per-call timing, windows across epochs, the
tiny regression data and the api_style of each variant."""

import itertools

import pytest
from test_payload_units import COMPLETE


class FakeClock:
    """A clock that advances by `tick` on every read: the timings it yields are exact counts of reads."""

    def __init__(self, tick):
        self.now, self.tick = 0.0, tick

    def __call__(self):
        self.now += self.tick
        return self.now


@pytest.mark.parametrize("warmup, calls, window", [(0, 10, 5), (3, 20, 5), (2, 7, 3), (1, 4, 4), (5, 3, 4)])
def test_time_calls_counts_and_samples(payload_modules, warmup, calls, window):
    timing = payload_modules["timing"]
    made = []
    wall, cpu = FakeClock(1.0), FakeClock(0.5)

    def call():
        made.append(1)
        wall.now += 10.0  # each call takes 10 s of wall time
        cpu.now += 4.0

    out = timing.time_calls(call, warmup, calls, window, wall_clock=wall, process_clock=cpu)
    assert len(made) == warmup + calls  # every call runs, the remainder after the last window too
    assert len(out["samples"]) == len(out["cpu_samples"]) == calls // window
    # a window's time: `window` calls and its closing clock read (the reads around the very first call
    # too, when the first window starts with it)
    for i, sample in enumerate(out["samples"]):
        extra = 2.0 if i == 0 and warmup == 0 else 0.0
        assert sample == pytest.approx(10.0 + (1.0 + extra) / window)
    assert all(c == pytest.approx(4.0 + 0.5 / window) for c in out["cpu_samples"])
    assert out["first_s"] == pytest.approx(11.0)  # the first call alone: 10 s and the read after it


@pytest.mark.parametrize("span", [False, True])
def test_window_timer_spans_epochs_only_when_asked(payload_modules, span):
    timing = payload_modules["timing"]
    timer = timing.WindowTimer(2, 3, span_epochs=span)
    for _ in range(10):  # ten epochs of one step each, as tiny_fit's
        timer.epoch_begin()
        timer.step_end(lambda: None)
    # spanning: the window opens at step 2, then every 3 steps close one: (10 - 2) // 3
    assert len(timer.samples) == ((10 - 2) // 3 if span else 0)
    assert timer.global_step == 10


def _spec(**changes):
    return dict(COMPLETE, **changes)


def test_tiny_fit_data(payload_modules):
    data = payload_modules["data"]
    spec = _spec(
        workload="tiny_fit",
        mode=None,
        loop="fit",
        input="numpy",
        data=None,
        train_samples=25,
        batch_size=10,
        val_samples=7,
        eval_samples=None,
    )
    arrays = data.load(spec)
    assert arrays["x_train"].shape == arrays["y_train"].shape == (25, 1)
    assert arrays["x_eval"].shape == arrays["y_eval"].shape == (7, 1)
    assert arrays["steps_per_epoch"] == 3  # the last batch of 5 is partial, as Keras makes it
    assert str(arrays["x_train"].dtype) == str(arrays["y_train"].dtype) == "float32"
    assert abs(arrays["x_train"]).max() <= 1.0
    again = data.load(spec)
    assert (again["x_train"] == arrays["x_train"]).all()  # seeded
    assert data.load(dict(spec, val_samples=0))["x_eval"] is None
    batches = data.epoch_batches(25, 10, 3, spec["seed"], 0)
    assert [len(b) for b in batches] == [10, 10, 5]
    assert sorted(itertools.chain.from_iterable(batches)) == list(range(25))


def test_call_overhead_data(payload_modules):
    arrays = payload_modules["data"].load(_spec(workload="call_overhead", mode=None, batch_size=4, data=None))
    assert arrays["x_train"].shape == (4, 1) and arrays["x_eval"] is arrays["x_train"]
    assert arrays["steps_per_epoch"] is None


@pytest.mark.parametrize(
    "changes, style",
    [
        ({"workload": "tiny_fit", "loop": "fit", "input": "numpy"}, "keras-fit"),
        ({"workload": "tiny_fit", "loop": "graph", "input": None}, "tf1-graph"),
        ({"workload": "call_overhead", "call": "predict"}, "keras-fit"),
        ({"workload": "call_overhead", "call": "fit"}, "keras-fit"),
        ({"workload": "call_overhead", "call": "train_on_batch"}, "keras-fit"),
        ({"workload": "call_overhead", "call": "call"}, "tf2-eager"),
        ({"workload": "call_overhead", "call": "function"}, "tf2-function"),
    ],
)
def test_api_style_of_each_variant(payload_modules, changes, style):
    assert payload_modules["resultio"].api_style(_spec(mode=None, **changes)) == style


def test_new_results_have_the_symbolic_build_phase(payload_modules):
    phases = payload_modules["resultio"].new_result()["phases_s"]
    assert "symbolic_build" in phases and phases["symbolic_build"] is None
