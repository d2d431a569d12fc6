"""The isometry regulariser of ISONet (arXiv 2006.16992), applied to every body convolution of MIMOConv."""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_mimo")
class IsometryRegularizer(keras.regularizers.Regularizer):
    """``weight * 0.5 * || conv(W, W, padding k-1, stride) - delta ||^2`` for a conv kernel W.

    W is read as the reference's (out, in, kh, kw) operator, transposed when it has more
    outputs than inputs; ``delta`` is the identity at the centre tap. Zero exactly when
    the convolution is an isometry. Keras kernels are (kh, kw, in, out).
    """

    def __init__(self, weight=1e-4, strides=1):
        self.weight = float(weight)
        self.strides = int(strides)

    def __call__(self, kernel):
        kh, kw, cin, cout = kernel.shape
        if cin < cout:  # operator rows = inputs
            rows, images, filters = cin, ops.transpose(kernel, (2, 0, 1, 3)), ops.transpose(kernel, (0, 1, 3, 2))
        else:  # operator rows = outputs
            rows, images, filters = cout, ops.transpose(kernel, (3, 0, 1, 2)), kernel
        images = ops.pad(images, ((0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1), (0, 0)))
        gram = ops.conv(images, filters, strides=self.strides, padding="valid")
        gh, gw = gram.shape[1], gram.shape[2]
        target = np.zeros((rows, gh, gw, rows), dtype="float32")
        target[:, gh // 2, gw // 2, :] = np.eye(rows, dtype="float32")
        return self.weight * 0.5 * ops.sum(ops.square(gram - ops.cast(target, gram.dtype)))

    def get_config(self):
        return {"weight": self.weight, "strides": self.strides}
