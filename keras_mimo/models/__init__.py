"""Ready models: MIMOConv / WideResNet, with the paper's named configurations."""

from keras_mimo.models.mimoconv import MIMOConv, WideResNet
from keras_mimo.models.registry import create_model, describe_model, list_models

__all__ = ["MIMOConv", "WideResNet", "create_model", "describe_model", "list_models"]
