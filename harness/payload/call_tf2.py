"""call_overhead's eager calls: model(x) and a tf.function of it. TF 2.x only (imported by
call_overhead.make_call after a version check; Python 3.6 grammar)."""


def make_call(tf, model, x, kind):
    """One call of `kind` ("call" or "function") on numpy `x`, its result converted to numpy (what using
    it costs, as predict's result is numpy)."""
    if kind == "call":
        return lambda: model(x, training=False).numpy()
    if kind != "function":
        raise ValueError("unknown eager call kind %r" % (kind,))
    forward = tf.function(lambda inputs: model(inputs, training=False))
    return lambda: forward(x).numpy()
