import os
import statistics
import sys
import timeit

os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(1)
n = int(sys.argv[1])
reps = int(sys.argv[2])
rs = np.random.RandomState(1234)
x = rs.randint(0, 256, size=(n, 28, 28)).astype(np.uint8) / 255.0
y = rs.randint(0, 10, size=n).astype(np.uint8)


def model():
    m = tf.keras.models.Sequential(
        [
            tf.keras.layers.Flatten(input_shape=(28, 28)),
            tf.keras.layers.Dense(512, activation=tf.nn.relu),
            tf.keras.layers.Dropout(0.2),
            tf.keras.layers.Dense(10, activation=tf.nn.softmax),
        ]
    )
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


class Conv(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self._supports_tf_logs = False

    def on_train_batch_end(self, batch, logs=None):
        for v in (logs or {}).values():
            if hasattr(v, "numpy"):
                v.numpy()


res = {"verbose1": [], "verbose0+cb": []}
for r in range(reps):
    for name in ("verbose1", "verbose0+cb") if r % 2 == 0 else ("verbose0+cb", "verbose1"):
        m = model()
        t = {}
        stamp = tf.keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda e, l: t.__setitem__(("b", e), timeit.default_timer()),
            on_epoch_end=lambda e, l: t.__setitem__(("e", e), timeit.default_timer()),
        )
        if name == "verbose1":
            m.fit(x, y, epochs=2, batch_size=32, callbacks=[stamp])
        else:
            m.fit(x, y, epochs=2, batch_size=32, callbacks=[stamp, Conv()], verbose=0)
        res[name].append(t[("e", 1)] - t[("b", 1)])
        print(name, f"epoch2 {res[name][-1]:.3f}", file=sys.stderr, flush=True)
r = [a / b for a, b in zip(res["verbose0+cb"], res["verbose1"], strict=False)]
print(
    tf.__version__,
    "median epoch2 verbose1 {:.3f} verbose0+cb {:.3f}; pairs {} median ratio {:.3f}".format(
        statistics.median(res["verbose1"]),
        statistics.median(res["verbose0+cb"]),
        [f"{v:.3f}" for v in r],
        statistics.median(r),
    ),
    file=sys.stderr,
)
