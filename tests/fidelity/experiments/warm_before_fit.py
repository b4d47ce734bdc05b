import os
import statistics
import sys
import timeit

os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import warnings

warnings.filterwarnings("ignore")
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


out = {"plain": [], "test_on_batch first": []}
for r in range(reps):
    for name in ("plain", "test_on_batch first") if r % 2 == 0 else ("test_on_batch first", "plain"):
        m = model()
        t = {}
        if name != "plain":
            m.test_on_batch(x[:32], y[:32])
        cb = tf.keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda b, logs=None: t.setdefault("first", timeit.default_timer()),
            on_epoch_end=lambda e, logs=None: t.__setitem__("end", timeit.default_timer()),
        )
        t0 = timeit.default_timer()
        m.fit(x, y, epochs=1, batch_size=32, callbacks=[cb], verbose=0)
        t1 = timeit.default_timer()
        out[name].append((t["first"] - t0, t["end"] - t0))
        print(
            "%-20s first_step %.3f epoch_end %.3f fit %.3f" % (name, t["first"] - t0, t["end"] - t0, t1 - t0),
            flush=True,
        )
for k, v in out.items():
    print(
        tf.__version__,
        k,
        f"median first_step {statistics.median(a for a, b in v):.3f} to_epoch_end {statistics.median(b for a, b in v):.3f}",
    )
