"""Pretrained presets: ``list_presets``, ``from_preset``, ``preset_metadata``, ``save_to_preset``.

A preset is a directory (``config.json``, ``model.weights.h5``, ``metadata.json``, ``README.md``;
see :mod:`keras_mimo.presets.format`) named after the recipe that trained it. The built-in ones
live in the repository's ``zoo/`` and ship with the package; others load from a directory, an
http(s) URL or ``hf://OWNER/NAME``, every file verified by sha256.

Example:
    >>> import keras_mimo
    >>> model = keras_mimo.from_preset("mimoconv-10-2.fashion-mnist-dynamic")  # doctest: +SKIP
    >>> model.superposition = 2  # doctest: +SKIP
"""

import importlib

from keras_mimo.presets.format import PresetError, PresetIntegrityError
from keras_mimo.presets.registry import list_presets

_LAZY = {
    "from_preset": "keras_mimo.presets.api",
    "preset_metadata": "keras_mimo.presets.api",
    "check_preset": "keras_mimo.presets.api",
    "save_to_preset": "keras_mimo.presets.format",
}

__all__ = ["PresetError", "PresetIntegrityError", "list_presets", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_mimo.presets' has no attribute {name!r}")
