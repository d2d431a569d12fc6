"""MIMOFormer: linear-attention Transformers computing on an M x N grid of sequences in
superposition."""

from keras_mimo.models.mimoformer.curriculum import MIMOWarmup
from keras_mimo.models.mimoformer.mimoformer import MIMOFormer, Performer

__all__ = ["MIMOFormer", "MIMOWarmup", "Performer"]
