"""tiny_fit loop=graph: tiny_fit.py's training as a TF1-style graph (tf.compat.v1 placeholders, Variables,
Session, AdamOptimizer with Keras' defaults) fed with numpy arrays through feed_dict: the "TF1 graph"
side of tensorflow#57645. Same model, initial weights, data, batches per epoch and per-epoch validation as
the Keras loop; the spec's `input` is null here (there is no input pipeline). Runs natively on TF 1.15 and
via tf.compat.v1 on 2.x.

On the TF 1.15 path: Python 3.6 grammar; tf.* names checked against the TF 1.15 API list.
"""

import numpy as np

import data as data_mod
import models
import tf1_graph
import tfsetup
import timing


def build_graph(tf, weights, seed):
    """The regression's training graph in a fresh tf.Graph: tanh hidden layer, linear output, MSE."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        x = tf.compat.v1.placeholder(tf.float32, [None, 1], name="x")
        y = tf.compat.v1.placeholder(tf.float32, [None, 1], name="y")
        names = ("dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias")
        w1, b1, w2, b2 = [tf.compat.v1.Variable(w, name=n) for w, n in zip(weights, names)]
        prediction = tf.matmul(tf.tanh(tf.matmul(x, w1) + b1), w2) + b2
        loss = tf.reduce_mean(tf.square(prediction - y))
        optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate=tf1_graph.LEARNING_RATE,
                                                     epsilon=tf1_graph.EPSILON)
        ops = {"x": x, "y": y, "loss": loss, "train": optimizer.minimize(loss),
               "init": tf.compat.v1.global_variables_initializer()}
    return graph, ops


def mean_loss(sess, ops, x, y, batch):
    """Sample-weighted mean loss over batches of `batch` (as Keras' validation and evaluate)."""
    total = 0.0
    for lo, hi in data_mod.eval_batches(len(x), batch):
        total += float(sess.run(ops["loss"], feed_dict={ops["x"]: x[lo:hi], ops["y"]: y[lo:hi]})) * (hi - lo)
    return total / len(x)


def train(sess, ops, data, spec, timer, epochs, phases):
    x, y, x_val, y_val = data["x_train"], data["y_train"], data["x_eval"], data["y_eval"]
    steps, batch = data["steps_per_epoch"], spec["batch_size"]
    start = timing.clock()
    for epoch in range(spec["epochs"]):
        timer.epoch_begin()
        epochs.begin()
        total = 0.0
        for idx in data_mod.epoch_batches(len(x), batch, steps, spec["seed"], epoch):
            _, loss = sess.run([ops["train"], ops["loss"]], feed_dict={ops["x"]: x[idx], ops["y"]: y[idx]})
            total += float(loss) * len(idx)
            if phases["first_step"] is None:
                phases["first_step"] = timing.clock() - start
            timer.step_end(lambda: None)  # sess.run is synchronous
        if x_val is not None:
            mean_loss(sess, ops, x_val, y_val, batch)  # per-epoch validation, as fit(validation_data=...)
        epochs.end(total / len(x), None)


def run(tf, spec, data, doc):
    phases = doc["phases_s"]
    sess, ops = tf1_graph.open_session(tf, spec, doc, models.TINY, build_graph)
    x, y = data["x_train"], data["y_train"]
    doc["quality"]["initial_loss"] = float(np.asarray(sess.run(ops["loss"], {ops["x"]: x, ops["y"]: y})))
    timer = timing.WindowTimer(spec["warmup_steps"], spec["window_steps"], span_epochs=True)
    epochs = timing.EpochRecorder()
    with timing.Stopwatch(phases, "train_total"):
        train(sess, ops, data, spec, timer, epochs, phases)
    timing.fill_timing(doc, spec, timer, epochs, data["steps_per_epoch"])
    x_eval, y_eval = (x, y) if data["x_eval"] is None else (data["x_eval"], data["y_eval"])
    with timing.Stopwatch(phases, "eval"):
        doc["quality"]["eval_loss"] = mean_loss(sess, ops, x_eval, y_eval, spec["batch_size"])
    tfsetup.record_gpu_peak(tf, spec, doc, sess)
    sess.close()
