"""Keras layers for computation in superposition, in data-flow order: binding -> superposed body -> unbinding.

Convolutional (MIMOConv): SuperpositionBinding -> PreActWideBlock -> UnbindingHead.
Attention (MIMOFormer): FAVORAttention / SuperposedFAVORAttention inside MIMOFormerBlock.
"""

from keras_mimo.layers.activations import ShiftedReLU, make_activation
from keras_mimo.layers.attention import (
    FAVORAttention,
    MultiHeadFAVORAttention,
    SuperposedFAVORAttention,
)
from keras_mimo.layers.binding import BindingRegularizer, SuperpositionBinding
from keras_mimo.layers.regularizers import IsometryRegularizer
from keras_mimo.layers.residual import PreActWideBlock
from keras_mimo.layers.transformer import MIMOFormerBlock
from keras_mimo.layers.unbinding import UnbindingHead

__all__ = [
    "FAVORAttention",
    "MIMOFormerBlock",
    "MultiHeadFAVORAttention",
    "SuperposedFAVORAttention",
    "BindingRegularizer",
    "IsometryRegularizer",
    "PreActWideBlock",
    "ShiftedReLU",
    "SuperpositionBinding",
    "UnbindingHead",
    "make_activation",
]
