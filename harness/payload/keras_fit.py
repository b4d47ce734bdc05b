"""Keras `fit` workloads (mlp_fit, cnn_fit) with numpy or tf.data input.

On the TF 1.15 path: runs on tf.keras 2.2.4-tf (graph mode, TF 1.15), Keras 2 (TF 2.x <= 2.15) and
Keras 3 (TF >= 2.16). Python 3.6 grammar; tf.* names checked against the TF 1.15 API list.
"""

import models
import tfsetup
import timing


def _sync(logs):
    """Block until the step that produced `logs` has finished (tensor logs -> .numpy())."""
    for value in (logs or {}).values():
        if hasattr(value, "numpy"):
            value.numpy()


def scalar(value):
    if isinstance(value, (list, tuple)):
        value = value[0]
    if hasattr(value, "numpy"):
        value = value.numpy()
    return None if value is None else float(value)


def _accuracy(logs):
    for key in ("accuracy", "acc"):  # tf.keras 1.15 logs "acc" for metrics=['accuracy']
        if key in logs:
            return logs[key]
    return None


def make_callback(tf, timer, epochs, state):
    """Keras callback feeding the WindowTimer/EpochRecorder.

    It costs each step what `fit`'s default progress bar costs, on every Keras: the step's logs are
    converted to Python numbers after every batch. Keras 3 does that for any callback with a batch-end hook;
    Keras 2 does it for its verbose=1 progress bar ("only block async when verbose = 1") but skips it for a
    callback that declares `_supports_tf_logs`. An earlier payload declared it, so on Keras 2 it skipped a
    per-step cost the seed's own `model.fit(...)` pays, while on Keras 3 it paid it: the same work was timed
    differently on either side of TF 2.16 (within noise on a 2-core CPU; a per-step device sync on GPU).
    """

    class TimingCallback(tf.keras.callbacks.Callback):
        def __init__(self):
            super(TimingCallback, self).__init__()
            self._supports_tf_logs = False  # Keras 2: numpy logs every batch, as the default progress bar

        def on_epoch_begin(self, epoch, logs=None):
            timer.epoch_begin()
            epochs.begin()

        def on_train_batch_end(self, batch, logs=None):
            if state["first_step"] is None:
                _sync(logs)
                state["first_step"] = timing.clock() - state["fit_start"]
            timer.step_end(lambda: _sync(logs))

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            _sync(logs)
            epochs.end(scalar(logs.get("loss")), scalar(_accuracy(logs)))
            state["last_epoch_end"] = timing.clock()  # fit_tail starts here (see run())

    return TimingCallback()


def make_dataset(tf, x, y, spec):
    """Shuffled (full buffer, seeded), batched, repeated, prefetched tf.data pipeline."""
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    dataset = dataset.shuffle(len(x), seed=spec["seed"], reshuffle_each_iteration=True)
    dataset = dataset.batch(spec["batch_size"], drop_remainder=True).repeat()
    return dataset.prefetch(tf.data.experimental.AUTOTUNE)


def fit_inputs(data, spec):
    """The arrays handed to `fit`. numpy input is float64, as the seed's `x_train / 255.0` makes it: Keras
    converts it to float32 inside `fit` (on TF 2.15 here about 1 s of fit's start-up at 60,000 samples, in
    the seed's timing and so in ours); tf.data input stays float32 (the pipeline's own dtype)."""
    x, y = data["x_train"], data["y_train"]
    if spec["input"] == "numpy":
        x = x.astype("float64")
    return x, y


def _fit(tf, model, x, y, data, spec, callback):
    if spec["input"] == "tfdata":
        return model.fit(make_dataset(tf, x, y, spec), epochs=spec["epochs"],
                         steps_per_epoch=data["steps_per_epoch"], verbose=0, callbacks=[callback])
    return model.fit(x, y, batch_size=spec["batch_size"], epochs=spec["epochs"], shuffle=True, verbose=0,
                     callbacks=[callback])


LOSS = "sparse_categorical_crossentropy"
METRICS = ("accuracy",)


def build(tf, spec, arch, loss=LOSS, metrics=METRICS):
    session = None
    if not tfsetup.is_tf2(tf):  # tf.keras 1.15 runs in a graph session; give it our thread config
        session = tf.compat.v1.Session(config=tfsetup.session_config(tf, spec))
        tf.compat.v1.keras.backend.set_session(session)
    return compiled_model(tf, spec, arch, loss, metrics), session


def compiled_model(tf, spec, arch, loss=LOSS, metrics=METRICS):
    model = models.build_keras(tf, arch, models.initial_weights(arch, spec["seed"]))
    model.compile(optimizer="adam", loss=loss, metrics=list(metrics))
    return model


def initial_loss(tf, spec, arch, x, y, loss=LOSS, metrics=METRICS):
    """The untrained model's loss on (x, y), from a fresh copy with the same initial weights, asked after
    training: a Keras call on the model before `fit` would warm fit's first step (its function machinery
    and thread pools), which the seed's own `fit` pays."""
    return batch_loss(compiled_model(tf, spec, arch, loss, metrics), x, y)


def batch_loss(model, x, y):
    """The loss on one batch (``test_on_batch``)."""
    try:
        return scalar(model.test_on_batch(x, y))
    except StopIteration:
        # Keras 3.4-3.6 (TF 2.16/2.17 as of their release): test_on_batch's one-batch generator is read past
        # its end inside the test function; evaluate of the same single batch gives the same loss
        return scalar(model.evaluate(x, y, batch_size=len(x), verbose=0))


def new_state():
    """What the timing callback and timed_fit share."""
    return {"first_step": None, "fit_start": None, "last_epoch_end": None}


def timed_fit(fit, phases, state):
    """Run fit() (a model.fit call with make_callback's callback) and record train_total, first_step,
    fit_total and fit_tail.

    fit_total: the model.fit call alone. fit_tail: end of the last epoch (our on_epoch_end) to fit
    returning: Keras' own end-of-fit work, on_train_end and input-pipeline teardown. On TF 2.15 this
    includes, in some runs, seconds of waiting in the tf.data iterator destructor for the autotune
    thread's timed sleep to end -- the seed's plain `model.fit` pays it too, so it is measured, not hidden.
    """
    with timing.Stopwatch(phases, "train_total"):
        state["fit_start"] = timing.clock()
        fit()
        fit_end = timing.clock()
    phases["first_step"] = state["first_step"]
    phases["fit_total"] = fit_end - state["fit_start"]
    if state["last_epoch_end"] is not None:
        phases["fit_tail"] = fit_end - state["last_epoch_end"]


def run(tf, spec, data, doc):
    arch = models.ARCHITECTURES[spec["workload"]]
    phases = doc["phases_s"]
    doc["model"] = models.model_info(arch)
    with timing.Stopwatch(phases, "build"):
        model, session = build(tf, spec, arch)
    batch = spec["batch_size"]
    timer = timing.WindowTimer(spec["warmup_steps"], spec["window_steps"])
    epochs = timing.EpochRecorder()
    state = new_state()
    callback = make_callback(tf, timer, epochs, state)
    x, y = fit_inputs(data, spec)
    timed_fit(lambda: _fit(tf, model, x, y, data, spec, callback), phases, state)
    timing.fill_timing(doc, spec, timer, epochs, data["steps_per_epoch"])
    with timing.Stopwatch(phases, "eval"):
        result = model.evaluate(data["x_eval"], data["y_eval"], batch_size=batch, verbose=0)
    doc["quality"]["eval_loss"] = scalar(result[0])
    doc["quality"]["eval_accuracy"] = scalar(result[1])
    tfsetup.record_gpu_peak(tf, spec, doc, session)
    doc["quality"]["initial_loss"] = initial_loss(tf, spec, arch, data["x_train"][:batch], data["y_train"][:batch])
