"""What the isometry regulariser costs per training step: conv(W, W) against keras-mimo's matmul form.

Times forward + backward of the penalty for single kernels (TensorFlow, tf.function), and checks
that both forms give the same value. Usage: ``KERAS_BACKEND=tensorflow python results/isometry_cost.py``.
"""
import time

import numpy as np
import tensorflow as tf
from keras import ops

from keras_mimo.layers.regularizers import IsometryRegularizer


def conv_form(kernel, strides, weight=1e-4):
    """0.5 * weight * ||conv(W, W, padding k-1, stride) - delta||^2 as one convolution (the definition)."""
    kh, kw, cin, cout = kernel.shape
    if cin < cout:
        rows, images, filters = cin, ops.transpose(kernel, (2, 0, 1, 3)), ops.transpose(kernel, (0, 1, 3, 2))
    else:
        rows, images, filters = cout, ops.transpose(kernel, (3, 0, 1, 2)), kernel
    images = ops.pad(images, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
    gram = ops.conv(images, filters, strides=strides, padding="valid")
    gh, gw = gram.shape[1], gram.shape[2]
    target = np.zeros((rows, gh, gw, rows), dtype="float32")
    target[:, gh // 2, gw // 2, :] = np.eye(rows, dtype="float32")
    return weight * 0.5 * ops.sum(ops.square(gram - target))


def timed(penalty, kernel, repeats=3):
    @tf.function(autograph=False)
    def step():
        with tf.GradientTape() as tape:
            value = penalty(kernel)
        return value, tape.gradient(value, kernel)

    value, _ = step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats, float(value)


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    for shape, strides in [((3, 3, 64, 64), 1), ((3, 3, 128, 256), 2), ((3, 3, 256, 256), 1), ((3, 3, 640, 640), 1)]:
        kernel = tf.Variable(rng.normal(scale=0.05, size=shape).astype("float32"))
        (t_conv, v_conv), (t_matmul, v_matmul) = (timed(lambda k: conv_form(k, strides), kernel),
                                                  timed(IsometryRegularizer(1e-4, strides), kernel))
        print(f"{str(shape):20s} stride {strides}: conv {1000 * t_conv:8.1f} ms, matmul {1000 * t_matmul:8.1f} ms, "
              f"speed-up {t_conv / t_matmul:5.2f}x, values {v_conv:.6g} / {v_matmul:.6g}", flush=True)
