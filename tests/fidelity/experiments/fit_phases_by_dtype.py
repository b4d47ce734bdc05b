import os
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
x64 = rs.randint(0, 256, size=(n, 28, 28)).astype(np.uint8) / 255.0
x32 = x64.astype(np.float32)
y8 = rs.randint(0, 10, size=n).astype(np.uint8)
y32 = y8.astype(np.int32)


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


for r in range(reps):
    for name in ("seed-f64", "payload-f32") if r % 2 == 0 else ("payload-f32", "seed-f64"):
        x, y = (x64, y8) if name == "seed-f64" else (x32, y32)
        m = model()
        t = {}
        stamp = tf.keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda e, l: t.__setitem__(("b", e), timeit.default_timer()),
            on_epoch_end=lambda e, l: t.__setitem__(("e", e), timeit.default_timer()),
        )
        t0 = timeit.default_timer()
        m.fit(x, y, epochs=2, batch_size=32, callbacks=[stamp], verbose=0)
        t1 = timeit.default_timer()
        print(
            "%-12s setup %.2f  epoch1 %.2f  gap %.2f  epoch2 %.2f  tail %.2f  total %.2f"
            % (
                name,
                t[("b", 0)] - t0,
                t[("e", 0)] - t[("b", 0)],
                t[("b", 1)] - t[("e", 0)],
                t[("e", 1)] - t[("b", 1)],
                t1 - t[("e", 1)],
                t1 - t0,
            ),
            flush=True,
        )
