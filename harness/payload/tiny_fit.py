"""tiny_fit loop=fit: per-epoch framework overhead of Keras `fit` (tensorflow#57645).

The 13-parameter 1-D regression (models.TINY) trained with `fit` on a few dozen points for many epochs of
one step each, with numpy arrays or tf.data as input and, when val_samples > 0, validation after every
epoch -- the setup where numpy `fit` on TF 2.x was reported ~10x slower than a TF1 graph. Time per step
spans epochs (timing.WindowTimer span_epochs): with one step per epoch it is the time per epoch,
validation and callbacks included. tiny_graph.py is the same training as a TF1-style graph loop.

On the TF 1.15 path: runs on tf.keras 2.2.4-tf (graph mode), Keras 2 and Keras 3. Python 3.6 grammar;
tf.* names checked against the TF 1.15 API list.
"""

import keras_fit
import models
import tfsetup
import timing

LOSS = "mse"


def _dataset(tf, x, y, spec, shuffle, repeat):
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=spec["seed"], reshuffle_each_iteration=True)
    dataset = dataset.batch(spec["batch_size"])
    return dataset.repeat() if repeat else dataset


def fit_kwargs(tf, data, spec):
    """model.fit's arguments. tf.data: a finite dataset that fit iterates once per epoch, as user code
    writes it; TF 1.15's graph-mode fit needs a repeated dataset with explicit step counts instead."""
    x, y, x_val, y_val = data["x_train"], data["y_train"], data["x_eval"], data["y_eval"]
    kwargs = {"epochs": spec["epochs"], "verbose": 0}
    if spec["input"] == "numpy":
        kwargs.update(x=x, y=y, batch_size=spec["batch_size"], shuffle=True)
        if x_val is not None:
            kwargs["validation_data"] = (x_val, y_val)
        return kwargs
    repeat = not tfsetup.is_tf2(tf)
    kwargs["x"] = _dataset(tf, x, y, spec, True, repeat)
    if x_val is not None:
        kwargs["validation_data"] = _dataset(tf, x_val, y_val, spec, False, repeat)
    if repeat:
        kwargs["steps_per_epoch"] = data["steps_per_epoch"]
        if x_val is not None:
            kwargs["validation_steps"] = -(-len(x_val) // spec["batch_size"])
    return kwargs


def run(tf, spec, data, doc):
    phases = doc["phases_s"]
    doc["model"] = models.model_info(models.TINY)
    with timing.Stopwatch(phases, "build"):
        model, session = keras_fit.build(tf, spec, models.TINY, loss=LOSS, metrics=())
    x, y = data["x_train"], data["y_train"]
    timer = timing.WindowTimer(spec["warmup_steps"], spec["window_steps"], span_epochs=True)
    epochs = timing.EpochRecorder()
    state = keras_fit.new_state()
    kwargs = fit_kwargs(tf, data, spec)
    kwargs["callbacks"] = [keras_fit.make_callback(tf, timer, epochs, state)]
    keras_fit.timed_fit(lambda: model.fit(**kwargs), phases, state)
    timing.fill_timing(doc, spec, timer, epochs, data["steps_per_epoch"])
    x_eval, y_eval = (x, y) if data["x_eval"] is None else (data["x_eval"], data["y_eval"])
    with timing.Stopwatch(phases, "eval"):
        result = model.evaluate(x_eval, y_eval, batch_size=spec["batch_size"], verbose=0)
    doc["quality"]["eval_loss"] = keras_fit.scalar(result)
    tfsetup.record_gpu_peak(tf, spec, doc, session)
    doc["quality"]["initial_loss"] = keras_fit.initial_loss(tf, spec, models.TINY, x, y, loss=LOSS, metrics=())
