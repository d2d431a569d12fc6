"""seq-fashion-mnist, keras-mimo's own LRA-style task: Fashion-MNIST's 28x28 grey images as 784
pixel tokens with LRA Image's models and settings. Registry, the loader on the real IDX files
(Debian's dataset-fashion-mnist), the bundled subset, and a --quick run exported as a preset."""

import json
import os

import numpy as np
import pytest

from keras_mimo.data import DatasetNotFoundError, find_image_data, load_idx_split, lra
from keras_mimo.data.lra import LRADataNotFoundError
from keras_mimo.presets.bundled import (
    bundled_folder,
    describe_bundled,
    load_bundled,
    write_bundled,
)
from keras_mimo.registry import DATASETS, LRA_TASK_NAMES, get_architecture, list_architectures
from keras_mimo.registry.lra import LRA_RECIPES
from keras_mimo.training.recipes import get_recipe, resolve_recipe

TASK = "seq-fashion-mnist"
FAMILIES = ("performer", "mimoformer-att", "mimoformer-attmlp")


def _fashion_mnist_folder():
    try:
        return find_image_data("fashion-mnist", source="idx").path
    except DatasetNotFoundError:
        return None


FOLDER = _fashion_mnist_folder()
needs_data = pytest.mark.skipif(
    FOLDER is None, reason="the Fashion-MNIST IDX files (apt-get install dataset-fashion-mnist)"
)


@pytest.fixture(scope="module")
def raw():
    """The real files, read directly: {"train": (images, labels), "test": (images, labels)}."""
    return {split: load_idx_split(FOLDER, split, 10) for split in ("train", "test")}


def _all(ds):
    pairs = list(ds.as_numpy_iterator())
    return np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])


# ------------------------------------------------------------------------------------- registry
def test_the_task_is_registered_with_image_settings():
    info = DATASETS[TASK]
    assert TASK in LRA_TASK_NAMES and info.family == "lra"
    assert (info.num_classes, info.vocab_size, info.default_length) == (10, 256, 784)
    assert info.class_names == DATASETS["fashion-mnist"].class_names
    assert info.labels[0] == "T-shirt/top" and info.labels[9] == "Ankle boot"
    assert info.license.startswith("MIT") and "dataset-fashion-mnist" in info.source
    assert lra.LRA_TASKS[TASK][1:] == (10, 256, 784)

    names = [n for n in list_architectures("mimoformer") if TASK in n]
    assert names == sorted(f"{f}-{TASK}{v}" for f in FAMILIES for v in ("", "-deep"))
    for family in FAMILIES:
        for variant in ("", "-deep"):
            ours = get_architecture(f"{family}-{TASK}{variant}")
            image = get_architecture(f"{family}-image{variant}")
            # Image's model, and the same position table: 784 rounded up to 1024
            assert ours.arguments == image.arguments and ours.arguments["max_length"] == 1024
            assert ours.facts == dict(image.facts, task=TASK)
            assert "keras-mimo's own task" in ours.description
            recipe = get_recipe(f"{ours.name}.{TASK}")
            assert recipe.dataset == TASK and recipe.data_options == {"token_offset": 0}
            theirs = get_recipe(f"{image.name}.image").to_dict()
            for field in ("name", "architecture", "dataset", "description"):
                del theirs[field]
            mine = recipe.to_dict()
            assert {k: mine[k] for k in theirs} == theirs
    assert LRA_RECIPES[TASK] == LRA_RECIPES["image"]
    att = get_recipe(f"mimoformer-att-{TASK}.{TASK}")
    assert att.grid == (4, 4) and att.mimo_warmup_steps == 10000 and att.batch_size == 256
    quick = resolve_recipe(att, quick=True)
    assert quick.data_options == {"token_offset": 0, "max_examples": 64}
    assert quick.batch_size == 32 and quick.steps == 4
    with pytest.raises(ValueError, match="fixed size"):
        resolve_recipe(att, max_length=256)


# ------------------------------------------------------------------------------------- the loader
@needs_data
def test_tokens_are_the_pixels_row_by_row_plus_the_offset(raw):
    images, labels = raw["test"]
    x, y = next(iter(lra.seq_fashion_mnist_dataset("test", batch_size=5).as_numpy_iterator()))
    assert x.shape == (5, 784) and x.dtype == np.int32 and y.dtype == np.int32
    np.testing.assert_array_equal(y, labels[:5])
    for i in range(5):
        for r, c in ((0, 0), (3, 17), (14, 14), (27, 27), (20, 5)):
            assert x[i, 28 * r + c] == images[i, r, c, 0]
        np.testing.assert_array_equal(x[i], images[i, :, :, 0].reshape(-1))
    assert (x == 0).any() and ((x == 0) == (images[:5, :, :, 0].reshape(5, -1) == 0)).all()
    x1, _ = next(iter(lra.lra_dataset(TASK, "test", batch_size=5, token_offset=1)))
    np.testing.assert_array_equal(x1.numpy(), x + 1)  # no pixel is token 0 (padding) any more
    assert x1.numpy().min() >= 1 and x1.numpy().max() <= 256
    np.testing.assert_array_equal(lra.fashion_mnist_tokens(images[:5], 1), x + 1)


@needs_data
def test_splits_are_image_tasks_train_dev_cut_and_the_test_file(raw):
    train_images, train_labels = raw["train"]
    test_images, test_labels = raw["test"]
    assert len(train_labels) == 60000 and len(test_labels) == 10000
    # train[:90%] (drop_remainder on the training split: 54000 = 216 x 250 batches)
    train = lra.seq_fashion_mnist_dataset("train", batch_size=250)
    assert int(train.cardinality()) == 216
    first, _ = _all(lra.seq_fashion_mnist_dataset("train", batch_size=7, shuffle=False).take(1))
    np.testing.assert_array_equal(first, lra.fashion_mnist_tokens(train_images[:7]))
    # dev = train[90%:], the last 6000 training images, in file order, held out of 'train'
    x, y = _all(lra.lra_dataset(TASK, "validation", batch_size=1000))
    assert x.shape == (6000, 784)
    np.testing.assert_array_equal(y, train_labels[54000:])
    np.testing.assert_array_equal(x[[0, 5999]], lra.fashion_mnist_tokens(train_images[[54000, -1]]))
    x, y = _all(lra.lra_dataset(TASK, "test", batch_size=4096))  # remainder (1808) kept
    assert x.shape == (10000, 784)
    np.testing.assert_array_equal(y, test_labels)
    np.testing.assert_array_equal(x[-3:], lra.fashion_mnist_tokens(test_images[-3:]))


@needs_data
def test_grid_batches_shuffle_with_the_seed_and_keep_eval_remainders(raw):
    def train(seed):
        return list(
            lra.seq_fashion_mnist_dataset(
                "train", batch_size=2, grid=(2, 2), max_examples=30, seed=seed
            ).as_numpy_iterator()
        )

    batches = train(3)
    assert [x.shape for x, _ in batches] == [(8, 784)] * 3  # 30 -> 3 x (2 * 2 * 2), 6 dropped
    assert all(x.dtype == np.int32 and y.dtype == np.int32 for x, y in batches)
    first30 = {row.tobytes() for row in lra.fashion_mnist_tokens(raw["train"][0][:30])}
    seen = [row.tobytes() for x, _ in batches for row in x]
    assert len(set(seen)) == 24 and set(seen) <= first30
    order = np.concatenate([x for x, _ in batches])
    np.testing.assert_array_equal(np.concatenate([x for x, _ in train(3)]), order)
    assert not np.array_equal(np.concatenate([x for x, _ in train(4)]), order)
    for split in ("dev", "test"):
        shapes = [
            x.shape[0]
            for x, _ in lra.seq_fashion_mnist_dataset(
                split, batch_size=2, grid=(2, 2), max_examples=30
            ).as_numpy_iterator()
        ]
        assert shapes == [8, 8, 8, 6]  # evaluation splits keep every example
    with pytest.raises(ValueError, match="max_examples=0 must be a positive integer"):
        lra.seq_fashion_mnist_dataset("test", max_examples=0)


def test_a_missing_data_folder_says_how_to_get_the_data(tmp_path):
    missing = tmp_path / "no-such-folder"
    with pytest.raises(LRADataNotFoundError) as caught:
        lra.lra_dataset(TASK, "train", data_dir=missing)
    message = str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)
    assert "seq-fashion-mnist reads the Fashion-MNIST images" in message
    assert "No local copy of Fashion-MNIST was found" in message and str(missing) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "t10k-images-idx3-ubyte" in message
    assert isinstance(caught.value.__cause__, DatasetNotFoundError)


# ------------------------------------------------------------------------------ bundled subset
def test_the_bundled_subset_is_the_bundled_images_as_tokens():
    images, labels = load_bundled("fashion-mnist")
    tokens, token_labels = load_bundled(TASK)
    assert tokens.shape == (3000, 784) and tokens.dtype == np.int32
    assert token_labels.dtype == np.int64
    np.testing.assert_array_equal(token_labels, labels)
    np.testing.assert_array_equal(tokens, images.reshape(3000, 784).astype(np.int32))
    assert tokens[0, 28 * 10 + 14] == images[0, 10, 14, 0]
    shifted, _ = load_bundled(TASK, token_offset=1, max_examples=10)
    np.testing.assert_array_equal(shifted, tokens[:10] + 1)
    assert bundled_folder(TASK) == bundled_folder("fashion-mnist")
    assert describe_bundled(TASK) == (
        "the first 3000 images of the Fashion-MNIST test split as 784-token sequences "
        "(zoo/data/fashion-mnist)"
    )
    with pytest.raises(TypeError):
        load_bundled(TASK, max_length=100)


@needs_data
def test_write_bundled_needs_no_files_of_its_own(tmp_path, raw):
    folder = write_bundled(TASK, root=tmp_path)  # no images there yet: writes fashion-mnist's
    assert folder == tmp_path / "fashion-mnist" and sorted(os.listdir(tmp_path)) == [
        "fashion-mnist"
    ]
    stamps = {p: os.stat(p).st_mtime_ns for p in folder.iterdir()}
    assert write_bundled(TASK, root=tmp_path) == folder  # there: a no-op
    assert {p: os.stat(p).st_mtime_ns for p in folder.iterdir()} == stamps
    tokens, labels = load_bundled(TASK, root=tmp_path)
    np.testing.assert_array_equal(tokens, load_bundled(TASK)[0])
    # the bundled subset is what the loader reads: the first 3000 test sequences
    np.testing.assert_array_equal(labels, raw["test"][1][:3000])
    np.testing.assert_array_equal(tokens[:300], lra.fashion_mnist_tokens(raw["test"][0][:300]))


# --------------------------------------------------------------------------- --quick and export
@needs_data
def test_a_quick_run_trains_and_exports_a_preset_scored_on_the_bundled_tokens(tmp_path, capsys):
    import keras_mimo
    from keras_mimo.cli import main
    from keras_mimo.presets.zoo import accuracy_per_point, lra_examples

    run, zoo = tmp_path / "run", tmp_path / "zoo"
    recipe = f"performer-{TASK}.{TASK}"
    command = ["train", "--recipe", recipe, "--quick", "--output", str(run)]
    assert main(command + ["--verbose", "0", "--no-tensorboard"]) == 0
    config = json.loads((run / "config.json").read_text())
    results = json.loads((run / "results.json").read_text())
    assert config["data_options"] == {"token_offset": 0, "max_examples": 64}
    assert results["steps"] == 4 and results["grid"] == [1, 1]
    for split in ("dev", "test"):
        assert 0.0 <= results[split]["accuracy"] <= 1.0 and np.isfinite(results[split]["loss"])
    os.makedirs(zoo)
    capsys.readouterr()
    assert main(["export-preset", str(run), "--zoo", str(zoo)]) == 0  # no --data-dir needed
    assert "exported performer-seq-fashion-mnist.seq-fashion-mnist-quick" in capsys.readouterr().out
    folder = zoo / f"{recipe}-quick"
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["dataset"] == TASK and metadata["class_names"][0] == "T-shirt/top"
    assert metadata["input"] == {"shape": [1024], "dtype": "int32"}  # the position table
    assert metadata["data_license"].startswith("MIT")
    assert metadata["bundled_subset"] == describe_bundled(TASK)
    assert metadata["test_split"].endswith("(64 sequences)")
    assert sorted(metadata["accuracy"]) == ["1x1"] == sorted(metadata["throughput"]["per_n"])
    assert metadata["train_command"].startswith(f"keras-mimo train --recipe {recipe} --quick")
    assert (zoo / "results.csv").is_file() and (zoo / "README.md").is_file()

    model = keras_mimo.from_preset(str(folder), compile=False)
    bundled = load_bundled(TASK, **metadata["data_options"])
    assert bundled[0].shape == (64, 784)  # the quick run reads the first 64 of each split
    measured = accuracy_per_point(model, *bundled, ["1x1"])
    assert measured == metadata["accuracy_bundled"]
    tokens, labels = lra_examples(TASK, "test", None, metadata["data_options"])
    assert accuracy_per_point(model, tokens, labels, ["1x1"]) == metadata["accuracy"]
    np.testing.assert_array_equal(tokens, bundled[0])
