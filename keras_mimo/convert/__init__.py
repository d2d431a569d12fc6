"""Converters from other implementations' weights into keras-mimo models.

``from_reference(state_dict, model)`` loads a checkpoint of the reference PyTorch MIMONets
(IBM/multiple-input-multiple-output-nets) into a MIMOConv / WideResNet (SuperWideResnet,
SuperWideISONet) or a MIMOFormer / Performer (ModelForSC, ModelForSCDual): all weights or none,
with every name or shape that does not fit listed in the error.

Example:
    >>> from keras_mimo.convert import from_reference, mimoformer_arguments
    >>> from keras_mimo.models import MIMOFormer
    >>> model = MIMOFormer(**mimoformer_arguments(reference_config))  # doctest: +SKIP
    >>> from_reference("model_best.pth.tar", model)  # doctest: +SKIP
"""

from keras_mimo.convert.mimoformer import from_mimoformer_reference, mimoformer_arguments
from keras_mimo.convert.reference import from_reference, reference_key

__all__ = ["from_mimoformer_reference", "from_reference", "mimoformer_arguments", "reference_key"]
