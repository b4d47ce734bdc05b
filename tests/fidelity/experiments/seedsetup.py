"""What every in-process experiment here shares: TF on the CPU with the matrix's threads (2/1), the seed's
synthetic data (mnist shapes, `x / 255.0` float64, uint8 labels) and the seed's MLP."""

import os

os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(2)
tf.config.threading.set_inter_op_parallelism_threads(1)


def seed_data(n):
    """(x float64 in [0, 1], y uint8), as the seed's preprocessing leaves them."""
    rs = np.random.RandomState(1234)
    x = rs.randint(0, 256, size=(n, 28, 28)).astype(np.uint8) / 255.0
    return x, rs.randint(0, 10, size=n).astype(np.uint8)


def seed_model():
    m = tf.keras.models.Sequential(
        [
            tf.keras.layers.Flatten(input_shape=(28, 28)),
            tf.keras.layers.Dense(512, activation=tf.nn.relu),
            tf.keras.layers.Dropout(0.2),
            tf.keras.layers.Dense(10, activation=tf.nn.softmax),
        ]
    )
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m
