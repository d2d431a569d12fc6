"""keras-mimo's public names as data, keras-free: architectures, datasets and their look-up.

The command line checks every name against these tables before a backend is imported; an
unknown name raises :class:`UnknownNameError` listing the closest known ones. Recipes (how an
architecture is trained on a dataset) are in :mod:`keras_mimo.training.recipes`.

Naming schemes (docs/design.md section 6):

* architecture: ``{family}-{size}``, e.g. ``wrn-28-10``, ``mimoconv-10-2``,
  ``mimoformer-att-listops``;
* dataset: ``cifar10``, ``fashion-mnist``, ``listops`` (``_`` and ``-`` alike);
* recipe: ``{architecture}.{dataset}[-{regime}]``, e.g. ``mimoconv-10-2.fashion-mnist-n2``;
* preset (trained weights): the name of the recipe that trained them.
"""

from keras_mimo.registry.architectures import (
    ARCHITECTURES,
    Architecture,
    get_architecture,
    list_architectures,
    register_architecture,
)
from keras_mimo.registry.datasets import (
    DATASETS,
    IMAGE_DATASET_NAMES,
    LRA_TASK_NAMES,
    DatasetInfo,
    get_dataset,
    list_datasets,
)
from keras_mimo.registry.names import UnknownNameError, closest_matches, lookup

__all__ = [
    "ARCHITECTURES",
    "DATASETS",
    "IMAGE_DATASET_NAMES",
    "LRA_TASK_NAMES",
    "Architecture",
    "DatasetInfo",
    "UnknownNameError",
    "closest_matches",
    "get_architecture",
    "get_dataset",
    "list_architectures",
    "list_datasets",
    "lookup",
    "register_architecture",
]
