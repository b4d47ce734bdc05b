"""TF2-only calls, each guarded by a version check. Never imported on TF 1.x (Python 3.6 grammar)."""


def tf_version_tuple(tf):
    parts = []
    for piece in tf.__version__.split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def set_seeds(tf, seed):
    tf.random.set_seed(seed)
    utils = getattr(tf.keras, "utils", None)
    if hasattr(utils, "set_random_seed"):  # Keras >= 2.7 and Keras 3 (seeds Keras 3's own generators)
        utils.set_random_seed(seed)


def gpu_peak_memory(tf):
    if tf_version_tuple(tf) < (2, 5):
        return None, None, "not available: tf.config.experimental.get_memory_info needs TF >= 2.5"
    try:
        info = tf.config.experimental.get_memory_info("GPU:0")
    except (ValueError, RuntimeError) as exc:
        return None, None, "not available: get_memory_info('GPU:0') failed: %s" % (exc,)
    return (int(info["peak"]), "tf.config.experimental.get_memory_info",
            "allocator peak bytes in use on GPU:0 since process start")


def build_info(tf):
    """(cuda_version, cudnn_version) from tf.sysconfig.get_build_info (TF >= 2.3), else (None, None)."""
    getter = getattr(tf.sysconfig, "get_build_info", None)
    if getter is None:
        return None, None
    info = getter()
    return info.get("cuda_version"), info.get("cudnn_version")


def physical_devices(tf):
    return [d.name for d in tf.config.list_physical_devices()]
