import statistics
import sys
import timeit

from seedsetup import seed_data, seed_model, tf  # sets TF's devices and threads first

n = int(sys.argv[1])
reps = int(sys.argv[2])
x, y = seed_data(n)


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
        m = seed_model()
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
