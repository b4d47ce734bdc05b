"""Does the seed's end-of-fit wait depend on GC being disabled (timeit's default)? Fresh process per run."""

import json
import statistics
import subprocess
import sys

CODE = r"""
import json, os, sys, timeit, gc
samples, epochs, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
import numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(1)
rs = np.random.RandomState(1234)
x = rs.randint(0, 256, size=(samples, 28, 28)).astype(np.uint8) / 255.0
y = rs.randint(0, 10, size=samples).astype(np.uint8)
model = tf.keras.models.Sequential([tf.keras.layers.Flatten(input_shape=(28, 28)),
    tf.keras.layers.Dense(512, activation=tf.nn.relu), tf.keras.layers.Dropout(0.2),
    tf.keras.layers.Dense(10, activation=tf.nn.softmax)])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
marks = []
gcs = []
gc.callbacks.append(lambda phase, info: gcs.append((phase, info["generation"], timeit.default_timer())) if phase == "start" and info["generation"] == 2 else None)
stamp = tf.keras.callbacks.LambdaCallback(on_epoch_end=lambda e, l: marks.append(timeit.default_timer()))
def fit():
    marks.append(timeit.default_timer())
    model.fit(x, y, epochs=epochs, batch_size=32, callbacks=[stamp], verbose=0)
    marks.append(timeit.default_timer())
setup = "gc.enable()" if mode == "gc" else "pass"
s = timeit.Timer(fit, setup=setup, globals={"gc": gc}).timeit(number=1)
t0 = marks[0]
print("RESULT " + json.dumps({"mode": mode, "seconds": s, "marks": [m - t0 for m in marks], "gen2": [g[2]-t0 for g in gcs if g[2] >= t0]}))
"""
py, samples, epochs, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
res = {"gc": [], "nogc": []}
for i in range(n):
    for mode in ("gc", "nogc") if i % 2 == 0 else ("nogc", "gc"):
        out = subprocess.run([py, "-c", CODE, samples, epochs, mode], capture_output=True, text=True)
        line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
        if not line:
            print(out.stderr[-2000:])
            sys.exit(1)
        d = json.loads(line[0][7:])
        tail = d["marks"][-1] - d["marks"][-2]
        res[mode].append(d)
        print(
            f"{mode:5s} fit {d['seconds']:6.2f}s epochs_end {[f'{m:.2f}' for m in d['marks'][1:-1]]} tail {tail:5.2f}s gen2@{[f'{g:.2f}' for g in d['gen2']]}",
            flush=True,
        )
for mode, ds in res.items():
    tails = [d["marks"][-1] - d["marks"][-2] for d in ds]
    print(
        mode,
        "median fit {:.2f}".format(statistics.median(d["seconds"] for d in ds)),
        "tails>0.5s: %d/%d" % (sum(t > 0.5 for t in tails), len(tails)),
    )
