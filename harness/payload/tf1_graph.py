"""mlp_loop mode=graph: the MLP as a TF1-style graph (tf.compat.v1 placeholders, Variables, Session,
AdamOptimizer) fed batch by batch with feed_dict. Runs natively on TF 1.15 and via tf.compat.v1 on 2.x.

On the TF 1.15 path: Python 3.6 grammar; tf.* names checked against the TF 1.15 API list.
"""

import numpy as np

import data as data_mod
import models
import tfsetup
import timing

LEARNING_RATE = 0.001
EPSILON = 1e-7  # Keras Adam default (tf.compat.v1.train.AdamOptimizer defaults to 1e-8)


def _forward(tf, x, params, training):
    w1, b1, w2, b2 = params
    hidden = tf.nn.relu(tf.matmul(tf.reshape(x, [-1, 28 * 28]), w1) + b1)
    if training:
        hidden = tf.nn.dropout(hidden, rate=0.2)
    return tf.matmul(hidden, w2) + b2  # logits; softmax is folded into the loss


def _loss_and_correct(tf, logits, y):
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    hits = tf.cast(tf.equal(tf.argmax(logits, 1, output_type=tf.int32), y), tf.float32)
    return tf.reduce_mean(losses), tf.reduce_sum(hits)


def build_graph(tf, weights, seed):
    """All ops of the TF1 training graph, in a fresh tf.Graph."""
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        x = tf.compat.v1.placeholder(tf.float32, [None, 28, 28], name="x")
        y = tf.compat.v1.placeholder(tf.int32, [None], name="y")
        names = ("dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias")
        params = [tf.compat.v1.Variable(w, name=n) for w, n in zip(weights, names)]
        loss, correct = _loss_and_correct(tf, _forward(tf, x, params, True), y)
        eval_loss, eval_correct = _loss_and_correct(tf, _forward(tf, x, params, False), y)
        optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate=LEARNING_RATE, epsilon=EPSILON)
        train_op = optimizer.minimize(loss)
        loss_sum = tf.compat.v1.Variable(0.0, trainable=False, name="epoch_loss_sum")
        correct_sum = tf.compat.v1.Variable(0.0, trainable=False, name="epoch_correct_sum")
        with tf.control_dependencies([train_op]):
            update = tf.group(loss_sum.assign_add(loss), correct_sum.assign_add(correct))
        ops = {"x": x, "y": y, "update": update, "loss_sum": loss_sum, "correct_sum": correct_sum,
               "reset": tf.compat.v1.variables_initializer([loss_sum, correct_sum]),
               "init": tf.compat.v1.global_variables_initializer(),
               "eval_loss": eval_loss, "eval_correct": eval_correct}
    return graph, ops


def train(sess, ops, data, spec, timer, epochs, phases):
    x, y = data["x_train"], data["y_train"]
    steps, batch = data["steps_per_epoch"], spec["batch_size"]
    start = timing.clock()
    for epoch in range(spec["epochs"]):
        timer.epoch_begin()
        epochs.begin()
        sess.run(ops["reset"])
        for idx in data_mod.epoch_batches(len(x), batch, steps, spec["seed"], epoch):
            sess.run(ops["update"], feed_dict={ops["x"]: x[idx], ops["y"]: y[idx]})  # synchronous
            if phases["first_step"] is None:
                phases["first_step"] = timing.clock() - start
            timer.step_end(lambda: None)
        loss_sum, correct_sum = sess.run([ops["loss_sum"], ops["correct_sum"]])
        epochs.end(loss_sum / steps, correct_sum / (steps * batch))


def evaluate(sess, ops, x, y, batch):
    loss_total, correct_total = 0.0, 0.0
    for lo, hi in data_mod.eval_batches(len(x), batch):
        loss, correct = sess.run([ops["eval_loss"], ops["eval_correct"]],
                                 feed_dict={ops["x"]: x[lo:hi], ops["y"]: y[lo:hi]})
        loss_total += float(loss) * (hi - lo)
        correct_total += float(correct)
    return loss_total / len(x), correct_total / len(x)


def open_session(tf, spec, doc, arch, make_graph):
    """The build phase of a graph workload: `arch`'s info into the document, make_graph(tf, weights, seed)
    -> (graph, ops) with its seeded initial weights, and a Session on it with the variables initialised."""
    doc["model"] = models.model_info(arch)
    weights = models.initial_weights(arch, spec["seed"])
    with timing.Stopwatch(doc["phases_s"], "build"):
        graph, ops = make_graph(tf, weights, spec["seed"])
        sess = tf.compat.v1.Session(graph=graph, config=tfsetup.session_config(tf, spec))
        sess.run(ops["init"])
    return sess, ops


def run(tf, spec, data, doc):
    phases = doc["phases_s"]
    sess, ops = open_session(tf, spec, doc, models.MLP, build_graph)
    batch = spec["batch_size"]
    initial = sess.run(ops["eval_loss"], feed_dict={ops["x"]: data["x_train"][:batch],
                                                    ops["y"]: data["y_train"][:batch]})
    doc["quality"]["initial_loss"] = float(np.asarray(initial))
    timer = timing.WindowTimer(spec["warmup_steps"], spec["window_steps"])
    epochs = timing.EpochRecorder()
    with timing.Stopwatch(phases, "train_total"):
        train(sess, ops, data, spec, timer, epochs, phases)
    timing.fill_timing(doc, spec, timer, epochs, data["steps_per_epoch"])
    with timing.Stopwatch(phases, "eval"):
        eval_loss, eval_acc = evaluate(sess, ops, data["x_eval"], data["y_eval"], batch)
    doc["quality"]["eval_loss"], doc["quality"]["eval_accuracy"] = eval_loss, eval_acc
    tfsetup.record_gpu_peak(tf, spec, doc, sess)
    sess.close()
