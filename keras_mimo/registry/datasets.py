"""The datasets keras-mimo trains and evaluates on, by name: classes, vocabulary, what they are.

Names are lower case with ``-`` (``fashion-mnist``); ``_`` is accepted in its place
(``fashion_mnist``, the tensorflow-datasets spelling). The pipelines that read them are in
:mod:`keras_mimo.data` (images) and :mod:`keras_mimo.data.lra` (Long Range Arena); this table is
keras-free so that the command line can check a name before a backend is imported.

================  ======  =======  ==========  ================================================
name              family  classes  vocabulary  what it is
================  ======  =======  ==========  ================================================
cifar10           image   10                   CIFAR-10, 32x32 RGB (tensorflow-datasets)
cifar100          image   100                  CIFAR-100, 32x32 RGB (tensorflow-datasets)
svhn              image   10                   SVHN cropped digits, 32x32 RGB
mnist             image   10                   MNIST, 28x28 grey, centre-cropped to 20x20
fashion-mnist     image   10                   Fashion-MNIST, 28x28 grey, centre-cropped to 20x20
listops           lra     10       19          LRA ListOps: nested list operations, <= 2000 tokens
text              lra     2        257         LRA Text: IMDB reviews as bytes (+1, 0 pads)
retrieval         lra     2        257         LRA Retrieval: pairs of AAN papers as bytes
image             lra     10       256         LRA Image: CIFAR-10 as 1024 grey-level tokens
pathfinder        lra     2        256         LRA Pathfinder: 32x32 images as 1024 tokens
================  ======  =======  ==========  ================================================

The vocabulary sizes are those of keras-mimo's tokenisers (ListOps: 9 operators and brackets,
10 digits; bytes + 1 so that 0 pads; grey levels with ``token_offset=0``, so a black pixel is
token 0 and is masked like padding, as LRA does). The LRA models are sized from this table.
"""

import dataclasses

from keras_mimo.registry.names import lookup


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What every part of keras-mimo may need to know about a dataset without reading it."""

    name: str
    family: str  # "image" or "lra"
    title: str
    num_classes: int
    vocab_size: int | None = None  # LRA: token ids are 0 (padding) .. vocab_size - 1
    default_length: int | None = None  # LRA: tokens per sequence as the loader gives them


DATASETS = {
    info.name: info
    for info in (
        DatasetInfo("cifar10", "image", "CIFAR-10", 10),
        DatasetInfo("cifar100", "image", "CIFAR-100", 100),
        DatasetInfo("svhn", "image", "SVHN", 10),
        DatasetInfo("mnist", "image", "MNIST", 10),
        DatasetInfo("fashion-mnist", "image", "Fashion-MNIST", 10),
        DatasetInfo("listops", "lra", "LRA ListOps", 10, vocab_size=19, default_length=2000),
        DatasetInfo("text", "lra", "LRA Text (IMDB bytes)", 2, vocab_size=257, default_length=1000),
        DatasetInfo(
            "retrieval", "lra", "LRA Retrieval (AAN)", 2, vocab_size=257, default_length=4000
        ),
        DatasetInfo(
            "image", "lra", "LRA Image (grey CIFAR-10)", 10, vocab_size=256, default_length=1024
        ),
        DatasetInfo("pathfinder", "lra", "LRA Pathfinder", 2, vocab_size=256, default_length=1024),
    )
}

DATASET_ALIASES = {
    "svhn-cropped": "svhn",
    "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
}

IMAGE_DATASET_NAMES = tuple(n for n, info in DATASETS.items() if info.family == "image")
LRA_TASK_NAMES = tuple(n for n, info in DATASETS.items() if info.family == "lra")


def get_dataset(name, family=None):
    """The :class:`DatasetInfo` of ``name``; :class:`UnknownNameError` with the closest names
    otherwise.

    ``family`` ("image" or "lra") restricts the look-up to one family.

    Example:

    >>> get_dataset("fashion_mnist").name
    'fashion-mnist'
    """
    if isinstance(name, DatasetInfo):
        return name
    table = (
        DATASETS if family is None else {n: d for n, d in DATASETS.items() if d.family == family}
    )
    kind = {None: "dataset", "image": "image dataset", "lra": "Long Range Arena task"}[family]
    return lookup(table, name, kind, aliases=DATASET_ALIASES, listing="keras_mimo.list_datasets()")


def list_datasets(family=None):
    """The dataset names, optionally of one family ("image" or "lra")."""
    return [n for n, info in DATASETS.items() if family in (None, info.family)]
