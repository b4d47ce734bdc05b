"""tf-matrix-harness: containerized TensorFlow version matrix benchmarks."""

__version__ = "0.1.0"
