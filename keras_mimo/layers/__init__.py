"""Keras layers for computation in superposition, in data-flow order: binding -> superposed body -> unbinding."""

from keras_mimo.layers.activations import ShiftedReLU, make_activation
from keras_mimo.layers.binding import BindingRegularizer, SuperpositionBinding
from keras_mimo.layers.regularizers import IsometryRegularizer
from keras_mimo.layers.residual import PreActWideBlock
from keras_mimo.layers.unbinding import UnbindingHead

__all__ = [
    "BindingRegularizer",
    "IsometryRegularizer",
    "PreActWideBlock",
    "ShiftedReLU",
    "SuperpositionBinding",
    "UnbindingHead",
    "make_activation",
]
