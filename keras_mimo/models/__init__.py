"""Ready models: MIMOConv / WideResNet (CNN) and MIMOFormer / Performer (linear Transformer), with
named configurations."""

from keras_mimo.models.mimoconv import MIMOConv, WideResNet
from keras_mimo.models.mimoformer import MIMOFormer, MIMOWarmup, Performer
from keras_mimo.models.registry import create_model, describe_model, list_models

__all__ = [
    "MIMOConv",
    "MIMOFormer",
    "MIMOWarmup",
    "Performer",
    "WideResNet",
    "create_model",
    "describe_model",
    "list_models",
]
