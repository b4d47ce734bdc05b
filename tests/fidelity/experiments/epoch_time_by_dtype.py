import statistics
import sys
import timeit

from seedsetup import np, seed_data, seed_model, tf  # sets TF's devices and threads first

n = int(sys.argv[1])
reps = int(sys.argv[2])
x64, y = seed_data(n)
x32 = x64.astype(np.float32)


res = {"f64": [], "f32": []}
for r in range(reps):
    for name in ("f64", "f32") if r % 2 == 0 else ("f32", "f64"):
        x = x64 if name == "f64" else x32
        m = seed_model()
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
