"""One factory for every named configuration of the paper (timm-style): ``create_model("mimoconv-28-10-n4")``."""

from keras_mimo.models.mimoconv import MIMOConv, WideResNet
from keras_mimo.models.mimoformer.configs import MIMOFORMER_CONFIGS

_CIFAR = {"input_shape": (32, 32, 3)}

# name -> (class, constructor arguments, what it is)
MODEL_CONFIGS = {
    "wrn-28-10": (
        WideResNet,
        dict(depth=28, width=10, **_CIFAR),
        "WideResNet-28-10 baseline of the paper (ReLU, 16-channel stem, no superposition).",
    ),
    "mimoconv-28-10-n1": (
        MIMOConv,
        dict(
            depth=28,
            width=10,
            initial_width=4,
            capacity=1,
            binding="hrr",
            activation="prelu",
            **_CIFAR,
        ),
        "MIMOConv-28-10 (WRN-28-10 body, PReLU, isometry regulariser, HRR binding) at capacity 1.",
    ),
    "mimoconv-28-10-n2": (
        MIMOConv,
        dict(
            depth=28,
            width=10,
            initial_width=4,
            capacity=2,
            binding="hrr",
            activation="prelu",
            **_CIFAR,
        ),
        "MIMOConv-28-10 at capacity 2: two images per body evaluation.",
    ),
    "mimoconv-28-10-n4": (
        MIMOConv,
        dict(
            depth=28,
            width=10,
            initial_width=4,
            capacity=4,
            binding="hrr",
            activation="prelu",
            **_CIFAR,
        ),
        "MIMOConv-28-10 at capacity 4: four images per body evaluation.",
    ),
    "mimoconv-28-10-dynamic": (
        MIMOConv,
        dict(
            depth=28,
            width=10,
            initial_width=4,
            capacity=4,
            binding="hrr",
            activation="prelu",
            **_CIFAR,
        ),
        "Dynamic MIMOConv-28-10: capacity 4, trained 80% at N=4 and 20% at N=1, served at N=1, 2 or 4.",
    ),
    "mimonet-10-mnist": (
        MIMOConv,
        dict(
            depth=10,
            width=2,
            initial_width=4,
            capacity=4,
            binding="hrr",
            activation="prelu",
            input_shape=(20, 20, 1),
        ),
        "Small MIMOConv ('MIMONet-10', one block per stage) for 20x20 centre-cropped MNIST, capacity 4; "
        "width 2 and initial width 4 are keras-mimo's choice (the paper's MNIST widths are not published in the code).",
    ),
}

# Long Range Arena: performer-*, mimoformer-att-*, mimoformer-attmlp-* for every task, wide and deep
# (keras_mimo/models/mimoformer/configs.py).
MODEL_CONFIGS.update(MIMOFORMER_CONFIGS)


def list_models():
    """Names accepted by :func:`create_model`."""
    return sorted(MODEL_CONFIGS)


def describe_model(name):
    """One line saying what the named configuration is."""
    return _lookup(name)[2]


def create_model(name, **overrides):
    """Builds the named configuration; keyword arguments override its constructor arguments (e.g. num_classes=100)."""
    cls, config, _ = _lookup(name)
    return cls(**{**config, **overrides})


def model_class_and_config(name):
    """The class and constructor arguments of the named configuration, without building it."""
    cls, config, _ = _lookup(name)
    return cls, dict(config)


def _lookup(name):
    if name not in MODEL_CONFIGS:
        raise ValueError(f"Unknown model {name!r}. Known models: {', '.join(list_models())}.")
    return MODEL_CONFIGS[name]
