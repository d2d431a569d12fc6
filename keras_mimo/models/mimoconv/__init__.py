"""MIMOConv: Wide-ResNets computing on superpositions of N images, and the plain WideResNet
baseline."""

from keras_mimo.models.mimoconv.mimoconv import MIMOConv, WideResNet

__all__ = ["MIMOConv", "WideResNet"]
