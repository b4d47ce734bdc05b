"""TensorFlow process setup shared by all workloads: seeds, threads, devices, GPU peak memory.

This module is on the TF 1.15 path: every tf.* name used here must exist in TF 1.15 (checked by
tests/payload/test_tf115_api.py). TF2-only calls live in tf2_api.py and are reached only when
is_tf2(tf) is true.
"""

import os
import random

import numpy as np


def prepare_environment(spec):
    """Environment that must be set before `import tensorflow`."""
    if spec["device"] == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"  # a CPU cell never touches a GPU
    else:
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")


def tf_major(tf):
    return int(tf.__version__.split(".")[0])


def is_tf2(tf):
    return tf_major(tf) >= 2


def configure(tf, spec):
    """Threads first (before any op runs), then seeds, then the device check."""
    tf.config.threading.set_intra_op_parallelism_threads(spec["intra_op_threads"])
    tf.config.threading.set_inter_op_parallelism_threads(spec["inter_op_threads"])
    set_seeds(tf, spec["seed"])
    check_device(tf, spec)


def set_seeds(tf, seed):
    random.seed(seed)
    np.random.seed(seed)
    tf.compat.v1.set_random_seed(seed)
    if is_tf2(tf):
        import tf2_api
        tf2_api.set_seeds(tf, seed)


def gpu_devices(tf):
    return [d.name for d in tf.config.experimental.list_physical_devices("GPU")]


def check_device(tf, spec):
    if spec["device"] == "gpu" and not gpu_devices(tf):
        raise RuntimeError(
            "device=gpu requested but TensorFlow %s sees no GPU (built_with_cuda=%s, CUDA_VISIBLE_DEVICES=%r)"
            % (tf.__version__, tf.test.is_built_with_cuda(), os.environ.get("CUDA_VISIBLE_DEVICES")))


def session_config(tf, spec):
    """ConfigProto for TF1-style Sessions (threads must be set here too: tf.config.threading only
    configures the eager context)."""
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=spec["intra_op_threads"],
                                      inter_op_parallelism_threads=spec["inter_op_threads"])
    config.gpu_options.allow_growth = True
    return config


def record_gpu_peak(tf, spec, doc, session=None):
    """Fill the result's memory.gpu_peak_* fields (see gpu_peak_memory)."""
    memory = doc["memory"]
    memory["gpu_peak_bytes"], memory["gpu_peak_api"], memory["gpu_peak_note"] = \
        gpu_peak_memory(tf, spec, session)


def gpu_peak_memory(tf, spec, session=None):
    """(bytes or None, api or None, note). Never a guessed number."""
    if spec["device"] != "gpu":
        return None, None, "not available: cpu cell (GPUs hidden with CUDA_VISIBLE_DEVICES=-1)"
    if is_tf2(tf):
        import tf2_api
        return tf2_api.gpu_peak_memory(tf)
    if session is None:
        return None, None, "not available: no TF1 session to run MaxBytesInUse in"
    with session.graph.as_default():
        with tf.device("/device:GPU:0"):
            op = tf.contrib.memory_stats.MaxBytesInUse()
    return (int(session.run(op)), "tf.contrib.memory_stats.MaxBytesInUse",
            "BFC allocator peak bytes in use on GPU:0 since process start")
