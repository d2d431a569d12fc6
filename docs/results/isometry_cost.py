"""What the isometry regulariser costs per training step: conv(W, W) against our matmul forms.

Times forward + backward of the penalty (TensorFlow, tf.function) for single kernels and for all
the regularised kernels of the Fashion-MNIST MIMOConv-10-2 at once (what one training step pays),
and checks that the forms give the same value. The class picks per kernel between one matmul per
displacement and one matmul over all tap pairs; ``per displacement`` forces the first everywhere.
Usage: ``KERAS_BACKEND=tensorflow python docs/results/isometry_cost.py``.
"""

import time
from unittest import mock

import numpy as np
import tensorflow as tf
from keras import ops

from keras_mimo.layers.regularizers import IsometryRegularizer
from keras_mimo.models import create_model
from keras_mimo.training.recipes import get_recipe


def conv_form(kernel, strides, weight=1e-4):
    """0.5 * weight * ||conv(W, W, padding k-1, stride) - delta||^2 as one convolution.

    This is the definition of the penalty.
    """
    kh, kw, cin, cout = kernel.shape
    if cin < cout:
        rows, images, filters = (
            cin,
            ops.transpose(kernel, (2, 0, 1, 3)),
            ops.transpose(kernel, (0, 1, 3, 2)),
        )
    else:
        rows, images, filters = cout, ops.transpose(kernel, (3, 0, 1, 2)), kernel
    images = ops.pad(images, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
    gram = ops.conv(images, filters, strides=strides, padding="valid")
    gh, gw = gram.shape[1], gram.shape[2]
    target = np.zeros((rows, gh, gw, rows), dtype="float32")
    target[:, gh // 2, gw // 2, :] = np.eye(rows, dtype="float32")
    return weight * 0.5 * ops.sum(ops.square(gram - target))


def timed(penalty, kernels, repeats=3):
    """Mean seconds of forward + backward of ``sum(penalty(kernel, strides))``, and its value."""

    @tf.function(autograph=False)
    def step():
        with tf.GradientTape() as tape:
            value = tf.add_n([penalty(kernel, strides) for kernel, strides in kernels])
        return value, tape.gradient(value, [kernel for kernel, _ in kernels])

    value, _ = step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats, float(value)


def per_displacement(kernel, strides):
    with mock.patch("keras_mimo.layers.regularizers._ALL_PAIRS_LIMIT", 0):
        return IsometryRegularizer(1e-4, strides)(kernel)


FORMS = [
    ("conv", conv_form),
    ("per displacement", per_displacement),
    ("as the class picks", lambda kernel, strides: IsometryRegularizer(1e-4, strides)(kernel)),
]


def report(label, kernels, repeats):
    results = [(name, *timed(form, kernels, repeats)) for name, form in FORMS]
    times = ", ".join(f"{name} {1000 * seconds:7.1f} ms" for name, seconds, _ in results)
    values = " / ".join(f"{value:.6g}" for _, _, value in results)
    print(f"{label:34s} {times}; values {values}", flush=True)


def recipe_kernels(recipe):
    """(kernel variable, strides) of every convolution the recipe's model regularises."""
    recipe = get_recipe(recipe)
    model = create_model(recipe.architecture, **recipe.model_overrides, seed=0)
    return [
        (layer.kernel, layer.kernel_regularizer.strides)
        for layer in model._flatten_layers()
        if isinstance(getattr(layer, "kernel_regularizer", None), IsometryRegularizer)
    ]


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    kernels = recipe_kernels("mimoconv-10-2.fashion-mnist-n4")
    report(f"MIMOConv-10-2 body, {len(kernels)} kernels", kernels, repeats=20)
    for shape, strides in [
        ((3, 3, 64, 64), 1),
        ((3, 3, 128, 128), 1),
        ((3, 3, 128, 256), 2),
        ((3, 3, 256, 256), 1),
        ((3, 3, 640, 640), 1),
    ]:
        kernel = tf.Variable(rng.normal(scale=0.05, size=shape).astype("float32"))
        report(f"{str(shape):20s} stride {strides}", [(kernel, strides)], repeats=3)
