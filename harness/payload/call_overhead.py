"""call_overhead: the framework's cost per call on a model too small to compute anything.

Times one kind of call (spec `call`) of the tiny model (models.TINY) on the same batch_size rows of numpy
input, `warmup_steps` untimed calls then `calls` timed ones; a raw sample is the mean seconds per call over
`window_steps` calls (timing.time_calls):

    predict         model.predict(x)                        tensorflow#40261: ~300x model(x)'s overhead
    call            model(x, training=False), to numpy      (TF 2.x: eager; call_tf2.py)
    function        a tf.function of model(x), to numpy     (TF 2.x; call_tf2.py)
    fit             model.fit(x, y, epochs=1)               tensorflow#35124/#33340: a Dataset per call
    train_on_batch  model.train_on_batch(x, y)

Before the calls, the `symbolic_build` phase adds `build_ops` symbolic `+` ops to a functional model and
builds it (tensorflow#61363: model-building cost grew across 2.12 -> 2.14).

On the TF 1.15 path (predict, fit, train_on_batch; call/function are refused there): Python 3.6 grammar;
tf.* names checked against the TF 1.15 API list.
"""

import keras_fit
import models
import tfsetup
import timing

LOSS = "mse"
#: calls that need eager execution (TF 2.x)
TF2_CALLS = ("call", "function")


def symbolic_build(tf, ops):
    """A functional model of `ops` symbolic additions on one Input: what building a large Keras graph costs
    per op (Keras 3: one KerasTensor operation each; Keras 2: one TFOpLambda layer each)."""
    inputs = tf.keras.Input(shape=models.input_shape(models.TINY))
    outputs = inputs
    for _ in range(ops):
        outputs = outputs + inputs
    return tf.keras.Model(inputs, outputs)


def make_call(tf, model, x, y, spec):
    """A no-argument function making one call of the spec's kind."""
    kind, batch = spec["call"], spec["batch_size"]
    if kind == "predict":
        return lambda: model.predict(x, batch_size=batch, verbose=0)
    if kind == "fit":
        return lambda: model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    if kind == "train_on_batch":
        return lambda: model.train_on_batch(x, y)
    if not tfsetup.is_tf2(tf):
        raise RuntimeError("call_overhead call=%s needs TensorFlow 2.x (eager model(x) / tf.function); this "
                           "is TensorFlow %s -- use call=predict, fit or train_on_batch" % (kind, tf.__version__))
    import call_tf2
    return call_tf2.make_call(tf, model, x, kind)


def fill_calls(doc, spec, timed):
    """time_calls' result into the document: samples are seconds per call."""
    steps = doc["steps"]
    steps["warmup_steps"] = spec["warmup_steps"]
    steps["window_steps"] = spec["window_steps"]
    steps["step_time_s"] = list(timed["samples"])
    steps["cpu_time_s"] = list(timed["cpu_samples"])
    steps["steps_measured"] = len(timed["samples"]) * spec["window_steps"]
    steps["total_steps"] = spec["warmup_steps"] + spec["calls"]
    mid = timing.median(timed["samples"])
    doc["throughput_samples_per_s"] = spec["batch_size"] / mid if mid else None


def run(tf, spec, data, doc):
    if spec["calls"] < spec["window_steps"]:
        raise ValueError("calls=%d is fewer than window_steps=%d: no window, no sample"
                         % (spec["calls"], spec["window_steps"]))
    phases = doc["phases_s"]
    doc["model"] = models.model_info(models.TINY)
    with timing.Stopwatch(phases, "build"):
        model, session = keras_fit.build(tf, spec, models.TINY, loss=LOSS, metrics=())
    if spec["build_ops"]:
        with timing.Stopwatch(phases, "symbolic_build"):
            symbolic_build(tf, spec["build_ops"])
    x, y = data["x_train"], data["y_train"]
    doc["quality"]["initial_loss"] = keras_fit.batch_loss(model, x, y)
    call = make_call(tf, model, x, y, spec)
    with timing.Stopwatch(phases, "train_total"):
        timed = timing.time_calls(call, spec["warmup_steps"], spec["calls"], spec["window_steps"])
    phases["first_step"] = timed["first_s"]
    fill_calls(doc, spec, timed)
    with timing.Stopwatch(phases, "eval"):
        loss = keras_fit.batch_loss(model, x, y)
    doc["quality"]["final_loss"] = doc["quality"]["eval_loss"] = loss
    tfsetup.record_gpu_peak(tf, spec, doc, session)
