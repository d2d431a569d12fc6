"""Building the named architectures (timm style): ``create_model("mimoconv-28-10",
num_classes=100)``.

The names and their constructor arguments are data in :mod:`keras_mimo.registry.architectures`
(one table for both families); this module builds them.
"""

from keras_mimo.registry.architectures import get_architecture, list_architectures


def list_models(family=None):
    """Names accepted by :func:`create_model`, sorted; ``family`` = ``mimoconv`` or ``mimoformer``.

    Example:

    >>> "mimoconv-28-10" in list_models()
    True
    """
    return list_architectures(family)


def describe_model(name):
    """One line saying what the named architecture is."""
    return get_architecture(name).description


def create_model(name, **overrides):
    """Builds the named architecture; keyword arguments override its constructor arguments.

    Unknown names raise ``keras_mimo.registry.UnknownNameError`` listing the closest ones.

    Example:

    >>> model = create_model("mimoconv-10-2", capacity=2, input_shape=(20, 20, 1))
    >>> model.superposition = 1  # any divisor of the capacity
    """
    return get_architecture(name).build(**overrides)


def model_class_and_config(name):
    """The class and constructor arguments of the named architecture, without building it."""
    architecture = get_architecture(name)
    return architecture.model_class(), dict(architecture.arguments)
