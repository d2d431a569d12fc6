"""Training both families as their papers do, through ``model.fit`` on TensorFlow, JAX and PyTorch.

* ``OneCycleLR`` / ``OneCycleMomentum`` / ``one_cycle``: PyTorch's one-cycle schedule as Keras
  schedules;
* ``FilteredSGD``: PyTorch-style SGD with scheduled momentum, weight decay that skips PReLU/SReLU
  parameters, and the gradient filter (skip an update whose norm exceeds factor x last epoch's
  mean);
* callbacks: ``GradientFilterCallback``, ``DynamicSuperposition``, ``LazyIsometry``,
  ``MultiSuperpositionValidation``, ``ScheduleLogger``, ``AtomicCheckpoint``;
* ``CyclicAdamW``: PyTorch AdamW with a cycled ``beta_1`` (the MIMOFormer recipes);
* recipes: ``Recipe``, ``RECIPES`` / ``get_recipe`` / ``list_recipes`` / ``resolve_recipe`` (both
  families' runs as one dataclass, ``{architecture}.{dataset}[-{regime}]``);
* ``train`` (one resumable run loop with CSV/TensorBoard logs and best/last checkpoints, the
  family's part in ``training.image.ImageTask`` or ``training.lra.LRATask``) and ``evaluate``.
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
    "keras_mimo.training.image": ("ImageTask", "build_model"),
    "keras_mimo.training.loop": ("evaluate", "train"),
    "keras_mimo.training.lra": ("LRATask",),
    "keras_mimo.training.optimizers": ("CyclicAdamW", "FilteredSGD", "global_norm"),
    "keras_mimo.training.recipes": (
        "RECIPES",
        "Recipe",
        "get_recipe",
        "list_recipes",
        "quick",
        "resolve_recipe",
    ),
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
