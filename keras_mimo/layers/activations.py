"""Activations of the residual body: ReLU (WideResNet), per-channel PReLU (MIMOConv) and shifted
ReLU (WideISONet)."""

import keras
from keras import ops

ACTIVATIONS = ("relu", "prelu", "srelu")
DEFAULT_ACTIVATION_INIT = {"relu": None, "prelu": 0.5, "srelu": -1.0}


@keras.saving.register_keras_serializable(package="keras_mimo")
class ShiftedReLU(keras.layers.Layer):
    """``relu(x - b) + b`` with a trainable per-channel offset ``b`` (ISONet's SReLU,
    initialised at -1)."""

    def __init__(self, offset_init=-1.0, **kwargs):
        super().__init__(**kwargs)
        self.offset_init = float(offset_init)

    def build(self, input_shape):
        self.offset = self.add_weight(
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.offset_init),
            name="offset",
        )

    def call(self, inputs):
        return ops.relu(inputs - self.offset) + self.offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(offset_init=self.offset_init)
        return config


def make_activation(kind, init=None, name=None):
    """A fresh activation layer: "relu", "prelu" (per-channel slope, init 0.5) or "srelu"
    (per-channel offset, init -1)."""
    if kind not in ACTIVATIONS:
        raise ValueError(f"activation={kind!r} is unknown: use one of {ACTIVATIONS}.")
    init = DEFAULT_ACTIVATION_INIT[kind] if init is None else float(init)
    if kind == "relu":
        return keras.layers.ReLU(name=name)
    if kind == "prelu":
        return keras.layers.PReLU(
            alpha_initializer=keras.initializers.Constant(init), shared_axes=[1, 2], name=name
        )
    return ShiftedReLU(offset_init=init, name=name)


def is_activation_parameter(variable_path):
    """True for PReLU slopes and SReLU offsets, which the paper's recipe keeps out of weight
    decay."""
    return variable_path.endswith("/alpha") or variable_path.endswith("/offset")
