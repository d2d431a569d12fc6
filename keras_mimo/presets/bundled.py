"""Compact test subsets shipped in ``zoo/data/``, so the demo and the tests need no download.

Each is the first ``count`` examples of a dataset's test split, stored in the dataset's own
format (gzip IDX files for the MNIST family, LRA's TSV for generated ListOps), with its licence
in ``zoo/data/README.md``:
Fashion-MNIST is MIT, MNIST CC BY-SA 3.0 (attribution: Yann LeCun, Corinna Cortes and
Christopher J.C. Burges).

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

BUNDLED_COUNTS = {"fashion-mnist": 3000, "mnist": 3000, "listops": 500}


def bundled_folder(dataset, root=None):
    """``zoo/data/<dataset>`` (``root/<dataset>`` for another root)."""
    root = zoo_root() / "data" if root is None else Path(root)
    return root / get_dataset(dataset).name


def describe_bundled(dataset):
    """One line naming the subset, as metadata and tables quote it."""
    info = get_dataset(dataset)
    count = BUNDLED_COUNTS[info.name]
    what = "images" if info.family == "image" else "sequences"
    return f"the first {count} {what} of the {info.title} test split (zoo/data/{info.name})"


def load_bundled(dataset, root=None, **data_options):
    """``(uint8 images, int64 labels)`` of the bundled subset of ``dataset``; for a Long Range
    Arena task ``(int32 token ids, int64 labels)``, read with ``data_options`` (``max_length``)."""
    from keras_mimo.data.idx import read_idx

    info = get_dataset(dataset)
    if info.name not in BUNDLED_COUNTS:
        raise ValueError(
            f"no test subset of {info.title} is bundled; bundled: {', '.join(BUNDLED_COUNTS)}."
        )
    folder = bundled_folder(info.name, root)
    if info.family == "lra":
        from keras_mimo.presets.zoo import lra_examples

        return lra_examples(info.name, "test", folder, data_options)
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz", expected_ndim=3)
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz", expected_ndim=1)
    return images[..., np.newaxis], labels.astype(np.int64)


def write_bundled(dataset, data_dir=None, root=None):
    """Writes the bundled subset of ``dataset`` from a full local copy (maintainers)."""
    from keras_mimo.data.idx import write_idx
    from keras_mimo.data.images import find_image_data, load_idx_split

    info = get_dataset(dataset)
    count = BUNDLED_COUNTS[info.name]
    folder = bundled_folder(info.name, root)
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
