"""Model architectures, seeded initial weights, analytic params/FLOPs and the Keras builder.

Runs on TF 1.15 (tf.keras 2.2.4-tf), TF 2.x Keras 2 and TF >= 2.16 Keras 3; Python 3.6 grammar.
Layers are described as tuples so that params/FLOPs and initial weights do not depend on Keras.
"""

import numpy as np

INPUT_SHAPE = (28, 28)

MLP = (
    ("flatten",),
    ("dense", 512, "relu"),
    ("dropout", 0.2),
    ("dense", 10, "softmax"),
)

CNN = (
    ("reshape", (28, 28, 1)),
    ("conv2d", 32, 3, "relu"),
    ("maxpool", 2),
    ("conv2d", 64, 3, "relu"),
    ("maxpool", 2),
    ("flatten",),
    ("dense", 128, "relu"),
    ("dense", 10, "softmax"),
)

# the 1-D regression model of the numpy-fit-vs-graph report (13 parameters); an ("input", shape) first
# layer overrides INPUT_SHAPE
TINY = (
    ("input", (1,)),
    ("dense", 4, "tanh"),
    ("dense", 1, "linear"),
)

ARCHITECTURES = {"mlp_fit": MLP, "mlp_loop": MLP, "cnn_fit": CNN, "tiny_fit": TINY, "call_overhead": TINY}


def input_shape(arch):
    """Per-sample input shape of an architecture (its ("input", shape) layer, else INPUT_SHAPE)."""
    if arch and arch[0][0] == "input":
        return tuple(arch[0][1])
    return INPUT_SHAPE


def analyze(arch):
    """Walk the layer list; return (weight shapes [(kernel, bias)], params, forward FLOPs per sample).

    FLOPs count multiply-adds as 2: Dense 2*in*out, Conv2D ('valid', stride 1) 2*k*k*cin*cout*Hout*Wout.
    Biases, activations, pooling and dropout are not counted.
    """
    shape = input_shape(arch)
    shapes, params, flops = [], 0, 0
    for layer in arch:
        kind = layer[0]
        if kind == "input":
            continue
        if kind == "flatten":
            shape = (int(np.prod(shape)),)
        elif kind == "reshape":
            shape = tuple(layer[1])
        elif kind == "dense":
            units = layer[1]
            shapes.append(((shape[0], units), (units,)))
            params += shape[0] * units + units
            flops += 2 * shape[0] * units
            shape = (units,)
        elif kind == "conv2d":
            filters, k = layer[1], layer[2]
            h, w, cin = shape
            shape = (h - k + 1, w - k + 1, filters)
            shapes.append(((k, k, cin, filters), (filters,)))
            params += k * k * cin * filters + filters
            flops += 2 * k * k * cin * filters * shape[0] * shape[1]
        elif kind == "maxpool":
            p = layer[1]
            shape = (shape[0] // p, shape[1] // p, shape[2])
        elif kind != "dropout":
            raise ValueError("unknown layer kind %r" % (kind,))
    return shapes, params, flops


def model_info(arch):
    _, params, flops = analyze(arch)
    return {"params": params, "flops_per_sample_forward": flops, "flops_per_sample_train": 3 * flops}


def initial_weights(arch, seed):
    """Glorot-uniform kernels and zero biases from numpy RandomState(seed): identical in every mode."""
    rs = np.random.RandomState(seed)
    weights = []
    for kernel_shape, bias_shape in analyze(arch)[0]:
        receptive = int(np.prod(kernel_shape[:-2])) if len(kernel_shape) > 2 else 1
        fan_in, fan_out = kernel_shape[-2] * receptive, kernel_shape[-1] * receptive
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights.append(rs.uniform(-limit, limit, size=kernel_shape).astype(np.float32))
        weights.append(np.zeros(bias_shape, dtype=np.float32))
    return weights


def _keras_layer(tf, layer):
    kind = layer[0]
    if kind == "flatten":
        return tf.keras.layers.Flatten()
    if kind == "reshape":
        return tf.keras.layers.Reshape(layer[1])
    if kind == "dense":
        return tf.keras.layers.Dense(layer[1], activation=layer[2])
    if kind == "dropout":
        return tf.keras.layers.Dropout(layer[1])
    if kind == "conv2d":
        return tf.keras.layers.Conv2D(layer[1], layer[2], activation=layer[3])
    if kind == "maxpool":
        return tf.keras.layers.MaxPooling2D(layer[1])
    raise ValueError("unknown layer kind %r" % (kind,))


def build_keras(tf, arch, weights):
    """Functional Keras model (works on tf.keras 2.2.4-tf, Keras 2 and Keras 3) with given weights."""
    inputs = tf.keras.Input(shape=input_shape(arch))
    outputs = inputs
    for layer in arch:
        if layer[0] == "input":
            continue
        outputs = _keras_layer(tf, layer)(outputs)
    model = tf.keras.Model(inputs, outputs)
    model.set_weights(weights)
    return model
