"""Converters from other implementations' weights into keras-mimo models."""

from keras_mimo.convert.reference import from_reference, reference_key

__all__ = ["from_reference", "reference_key"]
