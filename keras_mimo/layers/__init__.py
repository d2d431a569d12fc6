"""Keras layers for computation in superposition, in data-flow order: bind, superposed body, unbind.

Convolutional (MIMOConv): SuperpositionBinding -> PreActWideBlock -> UnbindingHead.
Attention (MIMOFormer): FAVORAttention / SuperposedFAVORAttention inside MIMOFormerBlock.

Models of your own: ``SuperpositionBinding`` pads a batch to whole groups of N, and
``UnbindingHead(..., original_inputs=inputs)`` cuts the rows back to one per input, so a model
composed of these layers takes any batch size, in functional and in subclassed models. To
switch N on a compiled model, subclass it with ``keras_mimo.superposition.SwitchableSuperposition``
(its docstring has a worked example).

Example:
    >>> import keras
    >>> from keras_mimo.layers import PreActWideBlock, SuperpositionBinding, UnbindingHead
    >>> images = keras.Input((8, 8, 3))
    >>> x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(images)
    >>> x = SuperpositionBinding(capacity=2, seed=0)(x)
    >>> x = keras.layers.GlobalAveragePooling2D()(PreActWideBlock(16)(x))
    >>> x = UnbindingHead(capacity=2)(x, original_inputs=images)
    >>> model = keras.Model(images, keras.layers.Dense(10)(x))
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
