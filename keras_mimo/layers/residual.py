"""The superposed body: pre-activation wide residual blocks (docs/design.md section 2, step 5)."""

import keras
from keras import ops

from keras_mimo.initializers import he_fan_out
from keras_mimo.layers.activations import make_activation
from keras_mimo.layers.regularizers import IsometryRegularizer


def batch_norm(name):
    """BatchNorm with PyTorch's defaults (momentum 0.1 there is 0.9 here, eps 1e-5), so converted
    weights behave the same."""
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def pad_one_pixel(images):
    """Zero padding of one pixel on every side: PyTorch's ``padding=1`` for strided 3x3 convs
    (Keras' "same" is asymmetric)."""
    return ops.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))


def strided_size(size, strides):
    """Output length of a 3x3 conv with one pixel of padding per side at ``strides``
    (None stays None)."""
    return None if size is None else (size - 1) // strides + 1


def conv_then_batch_norm(inputs, conv, bn, training):
    """``bn(conv(inputs))``; at inference the BN is folded into the kernel and a bias.

    Folding saves one pass over the activations, and a conv + bias (+ ReLU) is what the
    backends' fused CPU kernels expect. The result equals the unfolded layers up to
    rounding (checked by the tests).
    """
    if training:
        return bn(conv(inputs), training=True)
    return _conv_with_folded_batch_norm(
        inputs,
        conv,
        bn,
        ops.cast(bn.moving_mean, "float32"),
        ops.cast(bn.moving_variance, "float32"),
    )


def _conv_with_folded_batch_norm(inputs, conv, bn, mean, variance):
    """``conv(inputs)`` normalised with ``mean`` and ``variance`` by BN ``bn``, as one conv
    plus a bias.

    The fold is computed in float32 (BN statistics stay float32 under mixed precision); the conv
    runs in the input's dtype.
    """
    scale = ops.cast(bn.gamma, "float32") * ops.rsqrt(variance + bn.epsilon)
    bias = ops.cast(bn.beta, "float32") - mean * scale
    kernel = ops.cast(ops.cast(conv.kernel, "float32") * scale, inputs.dtype)
    padding = "same" if conv.padding == "same" else "valid"
    return ops.conv(inputs, kernel, strides=conv.strides, padding=padding) + ops.cast(
        bias, inputs.dtype
    )


def stem_conv_then_batch_norm(images, conv, bn, training):
    """``bn(conv(images))`` for a stem on raw images, without a BN pass over its output
    when training.

    The stem runs on every image (N times the body's batch) at full resolution with more channels
    than the images have, so a training-mode BatchNorm on its output is several passes over the
    largest tensor of the step (most of the stem's cost on a CPU). The conv is linear, so its
    per-channel batch mean and variance follow from the mean and covariance of the input patches:
    with patches ``p`` and kernel columns ``w_c``, ``mean_c = mean(p) . w_c`` and
    ``var_c = w_c^T cov(p) w_c``. For a stem the patches are small (``kh * kw * C_in``, 9 for
    1-channel images), so these statistics cost little. BN then folds into the kernel and a bias,
    as at inference. Batch statistics, the moving-average update and the gradients are those of
    ``bn(conv(images), training=True)``, up to rounding (checked by the tests).
    """
    if not (training and bn.trainable) or conv.use_bias or tuple(conv.dilation_rate) != (1, 1):
        # Inference, a frozen BN, or a conv the patch statistics below do not cover (a bias,
        # dilation).
        return conv_then_batch_norm(images, conv, bn, training)
    kernel = ops.cast(conv.kernel, "float32")
    kh, kw, in_channels, out_channels = kernel.shape
    size = kh * kw * in_channels
    padding = "same" if conv.padding == "same" else "valid"
    # Each output position's input patch, in the kernel's (kh, kw, C_in) order: a conv with an
    # identity kernel.
    identity = ops.reshape(ops.eye(size, dtype="float32"), (kh, kw, in_channels, size))
    patches = ops.conv(ops.cast(images, "float32"), identity, strides=conv.strides, padding=padding)
    patches = ops.reshape(patches, (-1, size))
    patch_mean = ops.mean(patches, axis=0)
    centred = patches - patch_mean
    patch_covariance = ops.matmul(ops.transpose(centred), centred) / ops.cast(
        ops.shape(centred)[0], "float32"
    )
    columns = ops.reshape(kernel, (size, out_channels))
    mean = ops.matmul(patch_mean[None, :], columns)[0]
    variance = ops.sum(columns * ops.matmul(patch_covariance, columns), axis=0)
    bn.moving_mean.assign(bn.moving_mean * bn.momentum + mean * (1.0 - bn.momentum))
    bn.moving_variance.assign(bn.moving_variance * bn.momentum + variance * (1.0 - bn.momentum))
    return _conv_with_folded_batch_norm(images, conv, bn, mean, variance)


@keras.saving.register_keras_serializable(package="keras_mimo")
class PreActWideBlock(keras.layers.Layer):
    """BN -> act -> conv3x3(stride) -> BN -> act -> conv3x3, plus the shortcut.

    The shortcut is the identity, or ``conv1x1(stride) + BN`` of the raw block input when the
    stride or channel count changes (as in the reference). Strided 3x3 convolutions pad one
    pixel on every side (PyTorch's ``padding=1``), not Keras' asymmetric "same".

    Args:
        filters: output channels.
        strides: stride of the first convolution (1 or 2).
        activation: "relu", "prelu" or "srelu".
        activation_init: PReLU slope / SReLU offset at initialisation (None: 0.5 / -1).
        isometry_regularization: weight of the isometry regulariser on the three convolutions
            (0 disables).
        seed: seed of the convolution initialisers.
    """

    def __init__(
        self,
        filters,
        strides=1,
        activation="relu",
        activation_init=None,
        isometry_regularization=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)
        self.activation = activation
        self.activation_init = activation_init
        self.isometry_regularization = float(isometry_regularization)
        self.seed = seed
        self.bn1 = batch_norm("bn1")
        self.act1 = make_activation(activation, activation_init, name="act1")
        self.conv1 = self._conv(3, self.strides, "conv1", 0)
        self.bn2 = batch_norm("bn2")
        self.act2 = make_activation(activation, activation_init, name="act2")
        self.conv2 = self._conv(3, 1, "conv2", 1)
        self.shortcut_conv = None
        self.shortcut_bn = None

    def _conv(self, size, strides, name, offset):
        regularizer = (
            IsometryRegularizer(self.isometry_regularization, strides)
            if self.isometry_regularization
            else None
        )
        return keras.layers.Conv2D(
            self.filters,
            size,
            strides=strides,
            padding="valid" if strides > 1 or size == 1 else "same",
            use_bias=False,
            kernel_initializer=he_fan_out(None if self.seed is None else self.seed + offset),
            kernel_regularizer=regularizer,
            name=name,
        )

    @property
    def has_projection(self):
        return self.shortcut_conv is not None

    def build(self, input_shape):
        in_channels = input_shape[-1]
        height, width = input_shape[1], input_shape[2]
        out_height, out_width = (
            strided_size(height, self.strides),
            strided_size(width, self.strides),
        )
        self.bn1.build(input_shape)
        self.act1.build(input_shape)
        # A strided conv1 sees its input padded by one pixel per side (see call): build it for that
        # shape, so inputs as small as 1x1 are accepted.
        self.conv1.build(
            input_shape
            if self.strides == 1
            else (
                tuple(input_shape[:1])
                + tuple(None if size is None else size + 2 for size in (height, width))
                + tuple(input_shape[3:])
            )
        )
        mid_shape = (input_shape[0], out_height, out_width, self.filters)
        self.bn2.build(mid_shape)
        self.act2.build(mid_shape)
        self.conv2.build(mid_shape)
        if self.strides != 1 or in_channels != self.filters:
            self.shortcut_conv = self._conv(1, self.strides, "shortcut_conv", 2)
            self.shortcut_bn = batch_norm("shortcut_bn")
            self.shortcut_conv.build(input_shape)
            self.shortcut_bn.build(mid_shape)

    def call(self, inputs, training=None):
        out = self.act1(self.bn1(inputs, training=training))
        if self.strides > 1:
            out = pad_one_pixel(out)
        out = self.conv2(self.act2(conv_then_batch_norm(out, self.conv1, self.bn2, training)))
        shortcut = inputs
        if self.shortcut_conv is not None:
            shortcut = conv_then_batch_norm(inputs, self.shortcut_conv, self.shortcut_bn, training)
        return out + shortcut

    def compute_output_shape(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        return (
            input_shape[0],
            strided_size(height, self.strides),
            strided_size(width, self.strides),
            self.filters,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            strides=self.strides,
            activation=self.activation,
            activation_init=self.activation_init,
            isometry_regularization=self.isometry_regularization,
            seed=self.seed,
        )
        return config
