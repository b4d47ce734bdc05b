"""Training/eval data as numpy arrays (numpy >= 1.16 APIs only; Python 3.6 grammar).

x: float32 (n, 28, 28) in [0, 1]; y: int32 (n,) class ids 0..9.
synthetic: a learnable task -- every class has a fixed random 28x28 template (seeded), a sample is
    SIGNAL * template[label] + (1 - SIGNAL) * uniform noise, so a classifier gets well above chance.
mnist: <data_dir>/mnist.npz with keys x_train, y_train, x_test, y_test (the keras.datasets layout).
tiny (tiny_fit, call_overhead): a 1-D regression, x float32 (n, 1) uniform in [-1, 1], y float32 (n, 1) =
    sin(pi x) + noise; see tiny().
"""

import os

import numpy as np

NUM_CLASSES = 10
SHAPE = (28, 28)
SIGNAL = 0.3
CHUNK = 4096
#: workloads on the tiny 1-D regression (data=synthetic/mnist does not apply to them)
TINY_WORKLOADS = ("tiny_fit", "call_overhead")
TINY_NOISE = 0.1


def plan_steps(spec):
    """Steps per epoch: the spec's step budget, or one full pass (train_samples // batch_size)."""
    batch = spec["batch_size"]
    steps = spec["steps_per_epoch"] or spec["train_samples"] // batch
    if steps < 1:
        raise ValueError("train_samples=%d is smaller than batch_size=%d" % (spec["train_samples"], batch))
    if steps * batch > spec["train_samples"]:
        raise ValueError("steps_per_epoch*batch_size = %d*%d exceeds train_samples=%d"
                         % (steps, batch, spec["train_samples"]))
    return steps


def _synthetic_split(templates, n, rs):
    y = rs.randint(0, NUM_CLASSES, size=n).astype(np.int32)
    x = np.empty((n,) + SHAPE, dtype=np.float32)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        noise = rs.random_sample((stop - start,) + SHAPE).astype(np.float32)
        x[start:stop] = SIGNAL * templates[y[start:stop]] + (1.0 - SIGNAL) * noise
    return x, y


def synthetic(train_samples, eval_samples, seed):
    templates = np.random.RandomState(seed).random_sample((NUM_CLASSES,) + SHAPE).astype(np.float32)
    x_train, y_train = _synthetic_split(templates, train_samples, np.random.RandomState(seed + 1))
    x_eval, y_eval = _synthetic_split(templates, eval_samples, np.random.RandomState(seed + 2))
    return {"x_train": x_train, "y_train": y_train, "x_eval": x_eval, "y_eval": y_eval}


def _take(arrays, key_x, key_y, n, path):
    x, y = arrays[key_x], arrays[key_y]
    if n > len(x):
        raise ValueError("asked for %d samples from %s[%r] but it has only %d" % (n, path, key_x, len(x)))
    return (x[:n].astype(np.float32) / np.float32(255.0)), y[:n].astype(np.int32)


def mnist(data_dir, train_samples, eval_samples):
    path = os.path.join(data_dir, "mnist.npz")
    if not os.path.isfile(path):
        raise IOError("data=mnist but %s does not exist (expected an npz with keys x_train, y_train, "
                      "x_test, y_test; mount it at data_dir)" % path)
    with np.load(path) as arrays:
        x_train, y_train = _take(arrays, "x_train", "y_train", train_samples, path)
        x_eval, y_eval = _take(arrays, "x_test", "y_test", eval_samples, path)
    return {"x_train": x_train, "y_train": y_train, "x_eval": x_eval, "y_eval": y_eval}


def _regression(n, rs):
    x = rs.uniform(-1.0, 1.0, size=(n, 1)).astype(np.float32)
    y = (np.sin(np.pi * x) + TINY_NOISE * rs.standard_normal((n, 1))).astype(np.float32)
    return x, y


def tiny(spec):
    """The tiny workloads' data (seeded). tiny_fit: train_samples training and val_samples validation points
    (x_eval is None without validation), ceil(train_samples / batch_size) steps per epoch, the last one
    partial as Keras makes it. call_overhead: batch_size rows, the input of every call (x_eval = x_train)."""
    rs = np.random.RandomState(spec["seed"] + 1)
    if spec["workload"] == "call_overhead":
        x, y = _regression(spec["batch_size"], rs)
        return {"x_train": x, "y_train": y, "x_eval": x, "y_eval": y, "steps_per_epoch": None}
    x, y = _regression(spec["train_samples"], rs)
    x_val, y_val = _regression(spec["val_samples"], rs) if spec["val_samples"] else (None, None)
    steps = -(-spec["train_samples"] // spec["batch_size"])
    return {"x_train": x, "y_train": y, "x_eval": x_val, "y_eval": y_val, "steps_per_epoch": steps}


def load(spec):
    """Load data for a spec; the training set is cut to exactly steps_per_epoch * batch_size samples
    (the tiny workloads: see tiny())."""
    if spec["workload"] in TINY_WORKLOADS:
        return tiny(spec)
    steps = plan_steps(spec)
    if spec["data"] == "mnist":
        data = mnist(spec["data_dir"], spec["train_samples"], spec["eval_samples"])
    else:
        data = synthetic(spec["train_samples"], spec["eval_samples"], spec["seed"])
    used = steps * spec["batch_size"]
    data["x_train"] = data["x_train"][:used]
    data["y_train"] = data["y_train"][:used]
    data["steps_per_epoch"] = steps
    return data


def epoch_batches(n, batch, steps, seed, epoch):
    """Index arrays for one shuffled epoch of an explicit loop (same order in every loop mode); a last
    batch of fewer than `batch` when steps * batch > n."""
    order = np.random.RandomState(seed + 1000 + epoch).permutation(n)
    return [order[i * batch:(i + 1) * batch] for i in range(steps)]


def eval_batches(n, batch):
    return [(i, min(n, i + batch)) for i in range(0, n, batch)]
