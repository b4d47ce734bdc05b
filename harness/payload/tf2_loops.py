"""mlp_loop modes function / eager: Keras model + Keras Adam + GradientTape in an explicit loop.

TF2 only (never imported on TF 1.x). mode=function wraps the step in tf.function (traced on the first
call); mode=eager runs the same step op by op. Python 3.6 grammar.
"""

import data as data_mod
import models
import tfsetup
import timing

LEARNING_RATE = 0.001


class Trainer(object):
    """Model, optimizer, loss and per-epoch accumulators; steps compiled or eager per mode."""

    def __init__(self, tf, spec):
        self.tf = tf
        self.model = models.build_keras(tf, models.MLP, models.initial_weights(models.MLP, spec["seed"]))
        self.optimizer = tf.keras.optimizers.Adam(learning_rate=LEARNING_RATE)
        if hasattr(self.optimizer, "build"):  # Keras >= 2.11 / Keras 3: create slots outside tf.function
            self.optimizer.build(self.model.trainable_variables)
        self.loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()
        self.loss_sum = tf.Variable(0.0, trainable=False)
        self.correct_sum = tf.Variable(0.0, trainable=False)
        signature = [tf.TensorSpec([None, 28, 28], tf.float32), tf.TensorSpec([None], tf.int32)]
        if spec["mode"] == "function":
            self.train_step = tf.function(self._train_step)
            self.eval_step = tf.function(self._eval_step, input_signature=signature)
        else:
            self.train_step = self._train_step
            self.eval_step = self._eval_step

    def _correct(self, probs, y):
        tf = self.tf
        return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probs, 1, output_type=tf.int32), y), tf.float32))

    def _train_step(self, x, y):
        tf = self.tf
        with tf.GradientTape() as tape:
            probs = self.model(x, training=True)
            loss = self.loss_fn(y, probs)
        variables = self.model.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        self.loss_sum.assign_add(loss)
        self.correct_sum.assign_add(self._correct(probs, y))
        return loss

    def _eval_step(self, x, y):
        probs = self.model(x, training=False)
        return self.loss_fn(y, probs), self._correct(probs, y)

    def reset(self):
        self.loss_sum.assign(0.0)
        self.correct_sum.assign(0.0)


def train(trainer, data, spec, timer, epochs, phases):
    tf = trainer.tf
    x, y = data["x_train"], data["y_train"]
    steps, batch = data["steps_per_epoch"], spec["batch_size"]
    start = timing.clock()
    for epoch in range(spec["epochs"]):
        timer.epoch_begin()
        epochs.begin()
        trainer.reset()
        for idx in data_mod.epoch_batches(len(x), batch, steps, spec["seed"], epoch):
            loss = trainer.train_step(tf.convert_to_tensor(x[idx]), tf.convert_to_tensor(y[idx]))
            if phases["first_step"] is None:
                loss.numpy()
                phases["first_step"] = timing.clock() - start
            timer.step_end(loss.numpy)
        epochs.end(trainer.loss_sum.numpy() / steps, trainer.correct_sum.numpy() / (steps * batch))


def evaluate(trainer, x, y, batch):
    tf = trainer.tf
    loss_total, correct_total = 0.0, 0.0
    for lo, hi in data_mod.eval_batches(len(x), batch):
        loss, correct = trainer.eval_step(tf.convert_to_tensor(x[lo:hi]), tf.convert_to_tensor(y[lo:hi]))
        loss_total += float(loss.numpy()) * (hi - lo)
        correct_total += float(correct.numpy())
    return loss_total / len(x), correct_total / len(x)


def run(tf, spec, data, doc):
    phases = doc["phases_s"]
    doc["model"] = models.model_info(models.MLP)
    with timing.Stopwatch(phases, "build"):
        trainer = Trainer(tf, spec)
    batch = spec["batch_size"]
    probs = trainer.model(tf.convert_to_tensor(data["x_train"][:batch]), training=False)
    doc["quality"]["initial_loss"] = float(trainer.loss_fn(data["y_train"][:batch], probs).numpy())
    timer = timing.WindowTimer(spec["warmup_steps"], spec["window_steps"])
    epochs = timing.EpochRecorder()
    with timing.Stopwatch(phases, "train_total"):
        train(trainer, data, spec, timer, epochs, phases)
    timing.fill_timing(doc, spec, timer, epochs, data["steps_per_epoch"])
    with timing.Stopwatch(phases, "eval"):
        eval_loss, eval_acc = evaluate(trainer, data["x_eval"], data["y_eval"], batch)
    doc["quality"]["eval_loss"], doc["quality"]["eval_accuracy"] = eval_loss, eval_acc
    tfsetup.record_gpu_peak(tf, spec, doc)
