"""Training MIMOConv as the paper does, through ``model.fit`` on TensorFlow, JAX and PyTorch.

* ``OneCycleLR`` / ``OneCycleMomentum`` / ``one_cycle``: PyTorch's one-cycle schedule as Keras schedules;
* ``FilteredSGD``: PyTorch-style SGD with scheduled momentum, weight decay that skips PReLU/SReLU
  parameters, and the gradient filter (skip an update whose norm exceeds factor x last epoch's mean);
* callbacks: ``GradientFilterCallback``, ``DynamicSuperposition``, ``LazyIsometry``,
  ``MultiSuperpositionValidation``, ``ScheduleLogger``, ``AtomicCheckpoint``;
* recipes: ``RECIPES`` / ``get_recipe`` / ``list_recipes`` (the paper's runs as named configurations);
* ``train`` (resumable runs with CSV/TensorBoard logs and best/last checkpoints) and ``evaluate``.
"""

import importlib

_EXPORTS = {
    "keras_mimo.training.callbacks": (
        "AtomicCheckpoint",
        "DynamicSuperposition",
        "GradientFilterCallback",
        "LazyIsometry",
        "MultiSuperpositionValidation",
        "ScheduleLogger",
        "atomic_path",
        "read_state",
    ),
    "keras_mimo.training.loop": ("build_model", "evaluate", "resolve_recipe", "train"),
    "keras_mimo.training.optimizers": ("FilteredSGD", "global_norm"),
    "keras_mimo.training.recipes": ("RECIPES", "TrainingRecipe", "get_recipe", "list_recipes"),
    "keras_mimo.training.schedules": (
        "OneCycleLR",
        "OneCycleMomentum",
        "one_cycle",
        "one_cycle_value",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name):
    # Lazy: importing keras_mimo.training (e.g. for the command line) must not import Keras,
    # so that KERAS_BACKEND can still be chosen.
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'keras_mimo.training' has no attribute {name!r}")
