"""keras-mimo: computation in superposition (MIMONets) for Keras 3 on TensorFlow, JAX and PyTorch.

Submodules load on first use, so the command line can choose the Keras backend before Keras is
imported.
"""

import importlib
import sys

__version__ = "0.1.0"
_SUBMODULES = (
    "convert",
    "data",
    "layers",
    "models",
    "presets",
    "registry",
    "superposition",
    "training",
)
_PRESET_FUNCTIONS = ("from_preset", "list_presets", "preset_metadata", "save_to_preset")
__all__ = list(_SUBMODULES) + list(_PRESET_FUNCTIONS) + ["__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_mimo.{name}")
    if name in _PRESET_FUNCTIONS:
        return getattr(importlib.import_module("keras_mimo.presets"), name)
    raise AttributeError(f"module 'keras_mimo' has no attribute {name!r}")


if (
    "keras" in sys.modules
):  # the backend is chosen already: register the model classes so load_model finds them
    importlib.import_module("keras_mimo.models")
