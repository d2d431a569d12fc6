"""Compact test subsets shipped in ``zoo/data/``, so the demo and the tests need no download.

Each is the first ``count`` examples of a dataset's test split, stored in the dataset's own
format (gzip IDX files for the MNIST family, LRA's TSV for generated ListOps), with its licence
in ``zoo/data/README.md``:
Fashion-MNIST is MIT, MNIST CC BY-SA 3.0 (attribution: Yann LeCun, Corinna Cortes and
Christopher J.C. Burges).

``seq-fashion-mnist`` has no files of its own: its subset is the bundled Fashion-MNIST images
(``zoo/data/fashion-mnist``) read as 784 pixel tokens, as its loader reads the full split.

Example:
    >>> from keras_mimo.presets.bundled import load_bundled
    >>> images, labels = load_bundled("fashion-mnist")
    >>> images.shape, images.dtype.name
    ((3000, 28, 28, 1), 'uint8')
"""

import csv
import os
from pathlib import Path

import numpy as np

from keras_mimo.presets.registry import zoo_root
from keras_mimo.registry import get_dataset

BUNDLED_COUNTS = {"fashion-mnist": 3000, "mnist": 3000, "listops": 500, "seq-fashion-mnist": 3000}
# Long Range Arena tasks that read an image dataset's pixels as tokens: their bundled subset is
# that dataset's bundled images, and their loader finds the full data as the image recipes do.
IMAGES_AS_TOKENS = {"seq-fashion-mnist": "fashion-mnist"}


def bundled_folder(dataset, root=None):
    """``zoo/data/<dataset>`` (``root/<dataset>`` for another root); for a task in
    ``IMAGES_AS_TOKENS`` the folder of the images it reads (``zoo/data/fashion-mnist``)."""
    root = zoo_root() / "data" if root is None else Path(root)
    name = get_dataset(dataset).name
    return root / IMAGES_AS_TOKENS.get(name, name)


def describe_bundled(dataset):
    """One line naming the subset, as metadata and tables quote it."""
    info = get_dataset(dataset)
    count = BUNDLED_COUNTS[info.name]
    if info.name in IMAGES_AS_TOKENS:
        images = get_dataset(IMAGES_AS_TOKENS[info.name])
        return (
            f"the first {count} images of the {images.title} test split as "
            f"{info.default_length}-token sequences (zoo/data/{images.name})"
        )
    what = "images" if info.family == "image" else "sequences"
    return f"the first {count} {what} of the {info.title} test split (zoo/data/{info.name})"


def load_bundled(dataset, root=None, **data_options):
    """``(uint8 images, int64 labels)`` of the bundled subset of ``dataset``; for a Long Range
    Arena task ``(int32 token ids, int64 labels)``, read with ``data_options`` (``max_length``;
    seq-fashion-mnist: ``token_offset``, ``max_examples``, as its loader takes them)."""
    from keras_mimo.data.idx import read_idx

    info = get_dataset(dataset)
    if info.name not in BUNDLED_COUNTS:
        raise ValueError(
            f"no test subset of {info.title} is bundled; bundled: {', '.join(BUNDLED_COUNTS)}."
        )
    folder = bundled_folder(info.name, root)
    if info.name in IMAGES_AS_TOKENS:
        return _bundled_tokens(info.name, root, **data_options)
    if info.family == "lra":
        from keras_mimo.presets.zoo import lra_examples

        return lra_examples(info.name, "test", folder, data_options)
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz", expected_ndim=3)
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz", expected_ndim=1)
    return images[..., np.newaxis], labels.astype(np.int64)


def _bundled_tokens(task, root, token_offset=0, max_examples=None):
    """The bundled images of ``IMAGES_AS_TOKENS[task]`` as the task's loader tokenises them."""
    from keras_mimo.checks import positive_int
    from keras_mimo.data.lra.seq_fashion_mnist import fashion_mnist_tokens

    images, labels = load_bundled(IMAGES_AS_TOKENS[task], root)
    if max_examples is not None:
        count = positive_int("max_examples", max_examples)
        images, labels = images[:count], labels[:count]
    return fashion_mnist_tokens(images, token_offset), labels


def write_bundled(dataset, data_dir=None, root=None):
    """Writes the bundled subset of ``dataset`` from a full local copy (maintainers).

    A task in ``IMAGES_AS_TOKENS`` (seq-fashion-mnist) has no files of its own: it reads the
    bundled images of its image dataset, so this writes nothing when they are there, and else
    writes those (``write_bundled("fashion-mnist")``)."""
    from keras_mimo.data.idx import write_idx
    from keras_mimo.data.images import find_image_data, load_idx_split

    info = get_dataset(dataset)
    count = BUNDLED_COUNTS[info.name]
    folder = bundled_folder(info.name, root)
    if info.name in IMAGES_AS_TOKENS:
        names = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
        if all((folder / name).is_file() for name in names):
            return folder
        return write_bundled(IMAGES_AS_TOKENS[info.name], data_dir=data_dir, root=root)
    if info.family == "lra":  # ListOps: the first rows of the generated test TSV
        from keras_mimo.data.lra.listops import listops_split_path

        with open(listops_split_path(data_dir, "test"), newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
        os.makedirs(folder, exist_ok=True)
        with open(listops_split_path(folder, "test"), "w", newline="") as handle:
            csv.writer(handle, delimiter="\t").writerows(rows[: count + 1])  # with the header
        return folder
    location = find_image_data(info.name, data_dir=data_dir, source="idx")
    images, labels = load_idx_split(location.path, "test", info.num_classes)
    os.makedirs(folder, exist_ok=True)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", images[:count, ..., 0])
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels[:count].astype(np.uint8))
    return folder
