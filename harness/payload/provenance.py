"""Runtime provenance: versions, build, devices, CPU, payload hash, installed packages.

On the TF 1.15 path (tf.* names checked against the TF 1.15 API list); Python 3.6 grammar, stdlib only
apart from numpy/tensorflow.
"""

import glob
import hashlib
import os
import platform
import sys

import numpy as np

import tfsetup


def payload_sha256(payload_dir):
    """sha256 over the payload's *.py files: sorted names, each name + NUL + bytes + NUL."""
    digest = hashlib.sha256()
    for path in sorted(glob.glob(os.path.join(payload_dir, "*.py"))):
        digest.update(os.path.basename(path).encode("utf-8") + b"\0")
        with open(path, "rb") as f:
            digest.update(f.read())
        digest.update(b"\0")
    return digest.hexdigest()


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "processor\t: ")) and ":" in line:
                    value = line.split(":", 1)[1].strip()
                    if value and not value.isdigit():
                        return value
    except OSError:
        pass
    return platform.processor() or None


def _metadata_field(text, field):
    for line in text.splitlines():
        if not line.strip():
            break  # headers end at the first blank line
        if line.lower().startswith(field.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return None


def _read_dist(path):
    for name in ("METADATA", "PKG-INFO"):
        meta = os.path.join(path, name)
        if os.path.isfile(meta):
            with open(meta, errors="replace") as f:
                text = f.read(8192)
            return _metadata_field(text, "Name"), _metadata_field(text, "Version")
    if os.path.isfile(path) and path.endswith(".egg-info"):  # single-file egg-info
        with open(path, errors="replace") as f:
            text = f.read(8192)
        return _metadata_field(text, "Name"), _metadata_field(text, "Version")
    base = os.path.basename(path).rsplit(".", 1)[0].split("-")
    return base[0], (base[1] if len(base) > 1 else None)


def installed_packages():
    """{name: version} from *.dist-info / *.egg-info on sys.path (first occurrence wins)."""
    found = {}
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        for path in sorted(glob.glob(os.path.join(entry, "*.dist-info")) +
                           glob.glob(os.path.join(entry, "*.egg-info"))):
            try:
                name, version = _read_dist(path)
            except (OSError, UnicodeDecodeError):
                continue
            if name and name.lower() not in {k.lower() for k in found}:
                found[name] = version
    return found


def keras_package(tf):
    """The distribution tf.keras resolved to: "keras" (Keras 2 up to TF 2.15, Keras 3 from 2.16), "tf_keras"
    (Keras 2 on TF >= 2.16 with TF_USE_LEGACY_KERAS=1) or "tensorflow" (TF 1.x's own tf.keras)."""
    name = getattr(tf.keras, "__name__", None) or ""
    return name.split(".", 1)[0] or None


def keras_version(tf):
    version = getattr(tf.keras, "__version__", None)
    package = keras_package(tf)
    for name in (package, "keras"):
        if version is None and name and name != "tensorflow" and name in sys.modules:
            version = getattr(sys.modules[name], "__version__", None)
    return version


def keras_major(version):
    """2 or 3 from a Keras version such as "2.15.0", "2.2.4-tf" or "3.12.0" (None when unknown)."""
    head = (version or "").split(".", 1)[0]
    return int(head) if head.isdigit() else None


def tf_git_version(tf):
    version = getattr(tf, "version", None)
    return getattr(version, "GIT_VERSION", None) or getattr(tf, "GIT_VERSION", None)


def build_versions(tf):
    if tfsetup.is_tf2(tf):
        import tf2_api
        return tf2_api.build_info(tf)
    return None, None  # TF 1.15 has no public build-info API


def devices(tf):
    if tfsetup.is_tf2(tf):
        import tf2_api
        return tf2_api.physical_devices(tf)
    return [d.name for d in tf.config.experimental.list_physical_devices()]


def cpu_affinity():
    """The CPUs this process may run on (sorted), or None where the platform cannot tell."""
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None:
        return None
    try:
        return sorted(getaffinity(0))
    except OSError:
        return None


def collect(tf, spec, payload_dir):
    cuda, cudnn = build_versions(tf)
    affinity = cpu_affinity()
    keras = keras_version(tf)
    return {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "tf_version": tf.__version__,
        "tf_git_version": tf_git_version(tf),
        "keras_version": keras,
        "keras_package": keras_package(tf),
        "keras_major": keras_major(keras),
        "numpy_version": np.__version__,
        "built_with_cuda": bool(tf.test.is_built_with_cuda()),
        "cuda_version": cuda,
        "cudnn_version": cudnn,
        "devices": devices(tf),
        "gpu_devices": tfsetup.gpu_devices(tf),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity_count": len(affinity) if affinity is not None else None,
        "cpu_affinity": affinity,
        "platform": platform.platform(),
        "env": {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS",
                                              "TF_ENABLE_ONEDNN_OPTS", "TF_FORCE_GPU_ALLOW_GROWTH",
                                              "TF_USE_LEGACY_KERAS")},
        "payload_sha256": payload_sha256(payload_dir),
        "packages": installed_packages(),
    }
