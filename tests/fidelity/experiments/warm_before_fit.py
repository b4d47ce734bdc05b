import statistics
import sys
import timeit
import warnings

warnings.filterwarnings("ignore")
from seedsetup import seed_data, seed_model, tf  # sets TF's devices and threads first

n = int(sys.argv[1])
reps = int(sys.argv[2])
x, y = seed_data(n)


out = {"plain": [], "test_on_batch first": []}
for r in range(reps):
    for name in ("plain", "test_on_batch first") if r % 2 == 0 else ("test_on_batch first", "plain"):
        m = seed_model()
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
