import sys
import timeit

from seedsetup import np, seed_data, seed_model, tf  # sets TF's devices and threads first

n = int(sys.argv[1])
reps = int(sys.argv[2])
x64, y8 = seed_data(n)
x32 = x64.astype(np.float32)
y32 = y8.astype(np.int32)


for r in range(reps):
    for name in ("seed-f64", "payload-f32") if r % 2 == 0 else ("payload-f32", "seed-f64"):
        x, y = (x64, y8) if name == "seed-f64" else (x32, y32)
        m = seed_model()
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
