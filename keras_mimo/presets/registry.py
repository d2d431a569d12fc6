"""The built-in presets by name, their pinned file hashes, and the recipes still without weights.

A preset is named after the recipe that trained it (``mimoconv-10-2.fashion-mnist-dynamic``;
docs/design.md section 6). Built-in presets are directories in the repository's ``zoo/`` folder,
installed with the package as ``keras_mimo.zoo``; the sha256 of every file of each is pinned in
``builtin_presets.json`` beside this module, written by ``keras-mimo export-preset``. Recipes
that need a GPU or data from the internet (CIFAR, SVHN, the full Long Range Arena) are listed
without weights: :func:`untrained_message` says how to train one.

This module is keras-free, so ``keras-mimo presets`` and name checks run before a backend loads.
"""

import functools
import importlib.resources
import json
import pathlib

from keras_mimo.registry.names import lookup

PINS_FILE = "builtin_presets.json"
# The recipes of these datasets need a GPU runtime or a download: listed, never trained here.
NEEDS_GPU_OR_DOWNLOAD = ("cifar10", "cifar100", "svhn", "text", "retrieval", "image", "pathfinder")


def zoo_root():
    """The folder holding the built-in presets: the installed ``keras_mimo.zoo`` package (the
    repository's ``zoo/``), or ``zoo/`` beside the package in a source checkout."""
    try:
        root = pathlib.Path(str(importlib.resources.files("keras_mimo.zoo")))
        if root.is_dir():
            return root
    except ModuleNotFoundError:
        pass
    return pathlib.Path(__file__).resolve().parents[2] / "zoo"


@functools.lru_cache(maxsize=None)
def _pins():
    path = pathlib.Path(__file__).with_name(PINS_FILE)
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def builtin_presets():
    """``{name: {"sha256": {file: hash}, "summary": {...}}}`` of the presets with weights."""
    return dict(_pins())


def list_presets(include_untrained=False):
    """The names of the built-in presets with weights, sorted; ``include_untrained=True`` adds
    the recipes listed without weights (CIFAR, SVHN, the full LRA tasks).

    Example:

    >>> "wrn-10-2.fashion-mnist" in list_presets()
    True
    """
    names = set(builtin_presets())
    if include_untrained:
        names |= set(untrained_recipes())
    return sorted(names)


def untrained_recipes():
    """Recipes of datasets that need a GPU or a download, listed in the zoo without weights."""
    from keras_mimo.training.recipes import RECIPES

    return sorted(
        name
        for name, recipe in RECIPES.items()
        if recipe.dataset in NEEDS_GPU_OR_DOWNLOAD and name not in _pins()
    )


def find_builtin(name):
    """The pinned entry of a built-in preset name (``_`` and ``-`` alike), None for an untrained
    recipe; an ``UnknownNameError`` with the closest names otherwise."""
    table = {n: _pins().get(n) for n in list_presets(include_untrained=True)}
    key = lookup({n: n for n in table}, name, "preset", listing="keras_mimo.list_presets()")
    return key, table[key]


def untrained_message(name):
    """Why ``name`` has no weights and the command that trains it."""
    from keras_mimo.training.recipes import get_recipe

    recipe = get_recipe(name)
    return (
        f"preset {name!r} is listed without weights: its recipe needs a GPU and data from the "
        f"internet, so none were trained for the zoo. Train it with `{recipe.command}`, then "
        f"`keras_mimo.save_to_preset(model, DIRECTORY)` and load that directory with "
        "keras_mimo.from_preset(DIRECTORY)."
    )
