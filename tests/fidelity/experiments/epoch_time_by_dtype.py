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
x64 = rs.randint(0, 256, size=(n, 28, 28)).astype(np.uint8) / 255.0
x32 = x64.astype(np.float32)
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


res = {"f64": [], "f32": []}
for r in range(reps):
    for name in ("f64", "f32") if r % 2 == 0 else ("f32", "f64"):
        x = x64 if name == "f64" else x32
        m = model()
        t = {}
        cb = tf.keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda e, l: t.__setitem__(("b", e), timeit.default_timer()),
            on_epoch_end=lambda e, l: t.__setitem__(("e", e), timeit.default_timer()),
        )
        m.fit(x, y, epochs=2, batch_size=32, callbacks=[cb], verbose=0)
        ep2 = t[("e", 1)] - t[("b", 1)]  # second epoch: no tracing/warm-up
        res[name].append(ep2)
        print(name, f"epoch2 {ep2:.3f} s", flush=True)
r = [a / b for a, b in zip(res["f32"], res["f64"], strict=False)]
print(
    tf.__version__,
    "median epoch2 f64 {:.3f} f32 {:.3f}; per-pair f32/f64 {} median {:.3f}".format(
        statistics.median(res["f64"]),
        statistics.median(res["f32"]),
        [f"{v:.3f}" for v in r],
        statistics.median(r),
    ),
)
