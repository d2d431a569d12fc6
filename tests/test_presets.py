"""Presets: the directory format, from_preset / save_to_preset, every built-in preset of the zoo
(loads, parameter count, accuracy on the bundled subset at every N), the zoo's generated files,
the command line (presets, demo, evaluate --preset) and the fine-tuning path."""

import csv
import json
import os
import shutil

import numpy as np
import pytest
from harness import assert_close, to_numpy

import keras_mimo
from keras_mimo.cli import main
from keras_mimo.models import MIMOConv, Performer, WideResNet
from keras_mimo.presets import PresetError, PresetIntegrityError
from keras_mimo.presets.bundled import load_bundled
from keras_mimo.presets.format import (
    CARD_FILE,
    CONFIG_FILE,
    HASHED_FILES,
    METADATA_FILE,
    PRESET_FILES,
    WEIGHTS_FILE,
    file_sha256,
)
from keras_mimo.presets.registry import builtin_presets, untrained_recipes, zoo_root
from keras_mimo.presets.zoo import accuracy_per_point, operating_points
from keras_mimo.registry import UnknownNameError

PREPROCESSING = dict(raw_shape=(28, 28, 1), center_crop=20, mean=(0.286,), std=(0.353,))
REQUIRED_METADATA = (
    "architecture",
    "dataset",
    "data_license",
    "input",
    "class_names",
    "capacity",
    "accuracy",
    "accuracy_bundled",
    "throughput",
    "parameter_count",
    "train_command",
    "eval_command",
    "keras_mimo_version",
    "sha256",
)


def _tiny_model(capacity=4, **kwargs):
    model = MIMOConv(
        depth=10,
        width=1,
        initial_width=1,
        capacity=capacity,
        input_shape=(20, 20, 1),
        stem_stride=2,
        seed=0,
        preprocessing=PREPROCESSING,
        **kwargs,
    )
    # weights no constructor makes, so a loader that ignored the file would be caught
    rng = np.random.default_rng(1)
    model.set_weights(
        [w + rng.normal(0, 0.01, w.shape).astype(w.dtype) for w in model.get_weights()]
    )
    return model


@pytest.fixture(scope="module")
def raw_images():
    return load_bundled("fashion-mnist")[0][:37]


@pytest.fixture()
def tiny_preset(tmp_path):
    model = _tiny_model()
    folder = tmp_path / "tiny"
    keras_mimo.save_to_preset(model, folder, dataset="fashion-mnist", note="test")
    return model, folder


# --------------------------------------------------------------------------------- format
def test_save_to_preset_writes_the_files_and_their_hashes(tiny_preset):
    model, folder = tiny_preset
    assert sorted(os.listdir(folder)) == sorted(PRESET_FILES)
    metadata = json.loads((folder / METADATA_FILE).read_text())
    assert metadata["sha256"] == {name: file_sha256(folder / name) for name in HASHED_FILES}
    assert metadata["parameter_count"] == model.count_params()
    assert metadata["input"] == {"shape": [28, 28, 1], "dtype": "uint8"}
    assert metadata["capacity"] == 4 and metadata["note"] == "test"
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["class_name"] == "MIMOConv" and "dtype" not in config["config"]
    assert "# tiny" in (folder / CARD_FILE).read_text()
    assert keras_mimo.preset_metadata(str(folder)) == metadata


def test_a_preset_round_trips_and_takes_raw_uint8_images(tiny_preset, raw_images):
    model, folder = tiny_preset
    loaded = keras_mimo.from_preset(str(folder))
    for n in (4, 2, 1):
        model.superposition = loaded.superposition = n
        logits = loaded.predict(raw_images, verbose=0)
        assert logits.shape == (len(raw_images), 10)
        assert_close(logits, model.predict(raw_images, verbose=0), rtol=1e-6)


def test_without_preprocessing_the_bare_network_takes_pipeline_images(tiny_preset, raw_images):
    import tensorflow as tf

    from keras_mimo.data import preprocess_eval_batch

    model, folder = tiny_preset
    bare = keras_mimo.from_preset(str(folder), include_preprocessing=False)
    assert bare.preprocessing is None and bare.raw_image_shape == (20, 20, 1)
    ready = preprocess_eval_batch(tf.constant(raw_images), "fashion-mnist").numpy()
    assert_close(bare.predict(ready, verbose=0), model.predict(raw_images, verbose=0), rtol=1e-5)
    with pytest.raises(ValueError, match=r"raw images of shape \(batch,\) \+ \(28, 28, 1\)"):
        model.predict(ready, verbose=0)


def test_num_classes_gives_a_new_classifier_and_keeps_the_rest(tiny_preset, raw_images):
    model, folder = tiny_preset
    tuned = keras_mimo.from_preset(str(folder), num_classes=3)
    assert tuned.predict(raw_images, verbose=0).shape == (len(raw_images), 3)
    for layer in model.layers:
        if layer.name == "classifier" or not layer.weights:
            continue
        for old, new in zip(layer.get_weights(), tuned.get_layer(layer.name).get_weights()):
            np.testing.assert_array_equal(old, new)
    same = keras_mimo.from_preset(str(folder), num_classes=10)
    np.testing.assert_array_equal(
        same.get_layer("classifier").get_weights()[0],
        model.get_layer("classifier").get_weights()[0],
    )
    random = keras_mimo.from_preset(str(folder), load_weights=False)
    assert not np.allclose(
        to_numpy(random.get_layer("stem_conv").kernel),
        to_numpy(model.get_layer("stem_conv").kernel),
    )


def test_class_from_preset_refuses_another_class_by_name(tiny_preset):
    _, folder = tiny_preset
    assert isinstance(MIMOConv.from_preset(str(folder)), MIMOConv)
    with pytest.raises(PresetError, match="is a MIMOConv preset, not a WideResNet one"):
        WideResNet.from_preset(str(folder))
    with pytest.raises(PresetError, match="not a Performer one"):
        Performer.from_preset(str(folder))


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_a_damaged_file_is_named_with_its_expected_hash(tiny_preset, damage):
    _, folder = tiny_preset
    path = folder / WEIGHTS_FILE
    expected = file_sha256(path)
    content = bytearray(path.read_bytes())
    if damage == "flip":
        content[len(content) // 2] ^= 0xFF
        path.write_bytes(bytes(content))
    elif damage == "truncate":
        path.write_bytes(bytes(content[: len(content) // 3]))
    else:
        path.unlink()
    error = PresetIntegrityError if damage != "delete" else PresetError
    with pytest.raises(error, match=WEIGHTS_FILE) as caught:
        keras_mimo.from_preset(str(folder))
    if damage != "delete":
        assert expected in str(caught.value)


def test_save_refuses_a_non_empty_directory_and_a_failed_save_leaves_nothing(tmp_path, monkeypatch):
    model = _tiny_model(capacity=2)
    folder = tmp_path / "mine"
    keras_mimo.save_to_preset(model, folder)
    before = {name: file_sha256(folder / name) for name in PRESET_FILES}
    with pytest.raises(PresetError, match="overwrite=True"):
        keras_mimo.save_to_preset(model, folder)
    with pytest.raises(PresetError, match="computed by save_to_preset"):
        keras_mimo.save_to_preset(model, tmp_path / "other", sha256={})

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(model), "save_weights", broken)
    with pytest.raises(OSError, match="disk full"):
        keras_mimo.save_to_preset(model, folder, overwrite=True)
    assert {name: file_sha256(folder / name) for name in PRESET_FILES} == before
    assert sorted(os.listdir(tmp_path)) == ["mine"]  # no staging folder left behind


def test_a_saved_model_keeps_its_n_and_switches(tmp_path, raw_images):
    model = _tiny_model()
    model.superposition = 2
    model.save_to_preset(tmp_path / "p")
    loaded = MIMOConv.from_preset(str(tmp_path / "p"))
    assert loaded.superposition == 2
    loaded.superposition = 4
    assert loaded.predict(raw_images, verbose=0).shape == (len(raw_images), 10)


def test_bad_locations_and_names_say_what_to_do():
    with pytest.raises(UnknownNameError, match="Did you mean 'wrn-10-2.fashion-mnist'"):
        keras_mimo.from_preset("wrn-10-2.fashin-mnist")
    with pytest.raises(PresetError, match="is not a directory"):
        keras_mimo.from_preset("./no/such/preset")
    with pytest.raises(PresetError, match="must be a preset name"):
        keras_mimo.from_preset(3)
    name = untrained_recipes()[0]
    with pytest.raises(
        PresetError, match=f"listed without weights.*keras-mimo train --recipe {name}"
    ):
        keras_mimo.from_preset(name)


# ------------------------------------------------------------------------------ the zoo itself
BUILTIN = sorted(builtin_presets())


def test_the_zoo_lists_its_presets_and_pins_every_file():
    assert keras_mimo.list_presets() == BUILTIN and BUILTIN
    assert set(keras_mimo.list_presets(include_untrained=True)) >= set(untrained_recipes())
    for name, entry in builtin_presets().items():
        folder = zoo_root() / name
        assert entry["sha256"] == {f: file_sha256(folder / f) for f in PRESET_FILES}, name


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_preset_loads_and_scores_what_its_metadata_says(name):
    metadata = keras_mimo.preset_metadata(name)
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    assert not missing, f"{name}: metadata lacks {missing}"
    model = keras_mimo.from_preset(name, compile=False)
    assert model.count_params() == metadata["parameter_count"]
    assert type(model).__name__ == metadata["class_name"]
    # the raw examples the preset takes: uint8 images, or int32 token ids cut as in training
    images, labels = load_bundled(metadata["dataset"], **metadata.get("data_options", {}))
    assert images.dtype == np.dtype(metadata["input"]["dtype"])
    assert list(images.shape[1:]) == metadata["input"]["shape"]
    points = operating_points(model)
    assert sorted(metadata["accuracy_bundled"]) == sorted(str(p) for p in points)
    measured = accuracy_per_point(model, images, labels, points)
    one_image = 100.0 / len(labels)
    for point, value in measured.items():
        # backends round differently: an image or two may change sides of a decision boundary
        assert abs(value - metadata["accuracy_bundled"][point]) <= 2 * one_image + 1e-9, (
            name,
            point,
            value,
        )
    assert set(metadata["accuracy"]) == set(metadata["accuracy_bundled"])
    assert set(metadata["throughput"]["per_n"]) == set(metadata["accuracy"])


def test_accuracy_does_not_depend_on_the_batch_size(raw_images):
    # groups of N are consecutive in the given order whatever the batch: a batch of 12 at N = 8
    # is rounded up to 16, so the figure is the one predict gives at Keras' default batch
    model = _tiny_model(capacity=8)
    images = np.concatenate([raw_images] * (40 // len(raw_images) + 1))[:40]
    labels = model.predict(images, verbose=0).argmax(-1)
    for batch_size in (12, 20, 500):
        assert accuracy_per_point(model, images, labels, [8], batch_size=batch_size) == {"8": 100.0}


def test_the_zoo_readme_and_results_table_cover_every_preset():
    readme = (zoo_root() / "README.md").read_text()
    with open(zoo_root() / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for name in BUILTIN:
        assert f"`{name}`" in readme
        metadata = keras_mimo.preset_metadata(name)
        mine = {row["n"]: float(row["test_accuracy"]) for row in rows if row["preset"] == name}
        assert mine == {k: float(v) for k, v in metadata["accuracy"].items()}
    for name in untrained_recipes():
        assert f"`{name}`" in readme


# ---------------------------------------------------------------------------- command line
def test_presets_command_prints_the_table(capsys):
    assert main(["presets", "--all"]) == 0
    out = capsys.readouterr().out
    for name in BUILTIN:
        assert name in out
    assert "no weights (train on a GPU)" in out


def test_demo_runs_offline_in_its_small_mode(tmp_path, capsys):
    from keras_mimo.demo import DEFAULT_PRESET

    preset = DEFAULT_PRESET if DEFAULT_PRESET in BUILTIN else "wrn-10-2.fashion-mnist"
    assert main(["demo", "--preset", preset, "--small", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "images/s" in out and "accuracy %" in out
    assert sorted(os.listdir(tmp_path)) == ["accuracy_vs_throughput.png", "demo.csv", "demo.json"]
    rows = json.loads((tmp_path / "demo.json").read_text())["rows"]
    assert {row["n"] for row in rows if row["model"] == preset} == set(
        operating_points(keras_mimo.from_preset(preset, compile=False))
    )
    assert all(row["accuracy"] > 50 and row["images_per_second"] > 0 for row in rows)


def test_demo_classifies_a_folder_of_the_users_images(tmp_path, capsys):
    from PIL import Image

    images, labels = load_bundled("fashion-mnist")
    for index in range(4):
        Image.fromarray(images[index, ..., 0]).resize((56, 56)).save(tmp_path / f"item{index}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    assert main(["demo", "--preset", "wrn-10-2.fashion-mnist", "--images", str(tmp_path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("item")]
    classes = keras_mimo.preset_metadata("wrn-10-2.fashion-mnist")["class_names"]
    assert len(lines) == 4
    predicted = [line.split("N = 1: ")[1] for line in lines]
    assert sum(p == classes[label] for p, label in zip(predicted, labels[:4])) >= 3


def test_demo_and_evaluate_reject_mistakes_before_keras(tmp_path, capsys):
    assert main(["demo", "--preset", "mimoconv-10-2.fashon-mnist-n4"]) == 2
    assert "Did you mean" in capsys.readouterr().err
    assert (
        main(["demo", "--preset", "wrn-10-2.fashion-mnist", "--images", str(tmp_path / "x")]) == 2
    )
    assert "not a directory" in capsys.readouterr().err
    assert main(["evaluate", "--preset", "wrn-10-2.fashion-mnis"]) == 2
    assert "Did you mean" in capsys.readouterr().err


# ----------------------------------------------------------------------------- fine-tuning
def test_fine_tuning_a_preset_beats_training_from_scratch_on_the_same_budget():
    from keras_mimo.presets.finetune import compare_finetuning

    preset = "wrn-10-2.fashion-mnist"
    images, labels = load_bundled("mnist")
    results = compare_finetuning(
        preset,
        images[:2000],
        labels[:2000],
        images[2000:],
        labels[2000:],
        num_classes=10,
        steps=25,
        batch_size=64,
        learning_rates=(1e-2, 1e-3),
        validation=400,
    )
    assert set(results["lr"].values()) <= {1e-2, 1e-3}
    assert results["finetuned"]["1"] > results["scratch"]["1"] + 5
    assert results["finetuned"]["1"] > 75


def test_export_preset_refuses_an_unfinished_run(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    assert main(["export-preset", str(tmp_path)]) == 2
    assert "results.json is missing" in capsys.readouterr().err


def test_a_copied_builtin_preset_loads_as_a_directory(tmp_path):
    shutil.copytree(zoo_root() / BUILTIN[0], tmp_path / "copy")
    model = keras_mimo.from_preset(str(tmp_path / "copy"), compile=False)
    assert model.count_params() == keras_mimo.preset_metadata(BUILTIN[0])["parameter_count"]


def test_an_lra_run_exports_as_a_token_preset_that_switches_grids(tmp_path, capsys):
    from keras_mimo.presets.zoo import export_run, lra_examples

    run = tmp_path / "run"
    recipe = "mimoformer-att-listops.listops"
    assert (
        main(["train", "--recipe", recipe, "--quick", "--output", str(run), "--verbose", "0"]) == 0
    )
    data = run / "listops-quick-data"
    metadata = export_run(run, zoo=tmp_path / "zoo", data_dir=data, bundled_root=tmp_path / "zoo")
    assert metadata["input"] == {"shape": [64], "dtype": "int32"}
    assert metadata["train_command"].startswith(f"keras-mimo train --recipe {recipe} --quick")
    assert sorted(metadata["accuracy"]) == sorted(metadata["throughput"]["per_n"])
    assert "4x4" in metadata["accuracy"] and "1x1" in metadata["accuracy"]
    model = keras_mimo.from_preset(str(tmp_path / "zoo" / f"{recipe}-quick"), compile=False)
    assert model.grid == (4, 4)  # loads at its capacity
    tokens, labels = lra_examples("listops", "test", data, metadata["data_options"])
    assert tokens.dtype == np.int32 and len(tokens) == len(labels) == 16
    assert accuracy_per_point(model, tokens, labels, ["2x2"])["2x2"] == metadata["accuracy"]["2x2"]
