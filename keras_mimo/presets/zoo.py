"""Scoring presets and keeping the zoo: accuracy per N, throughput per N, export of a finished
training run as a built-in preset, and the zoo's generated index, README and results table.

``keras-mimo export-preset RUN_FOLDER`` turns the final model of a ``keras-mimo train`` run into
``zoo/<recipe>/``: it scores the model on the full test split and on the bundled subset at
every N, measures its throughput, writes the preset with that metadata, and regenerates
``keras_mimo/presets/builtin_presets.json`` (the pinned hashes), ``zoo/README.md`` and
``zoo/results.csv`` from the metadata of every preset in the zoo.
"""

import csv
import io
import json
import os
import pathlib
import platform

from keras_mimo.presets.format import (
    METADATA_FILE,
    PRESET_FILES,
    PresetError,
    file_sha256,
    read_json,
)
from keras_mimo.presets.registry import PINS_FILE, untrained_recipes, zoo_root
from keras_mimo.registry import get_dataset

THROUGHPUT_BATCH = 1000  # images per predict call when throughput is measured
THROUGHPUT_REPEATS = 7
WEIGHTS_LICENSE = "Apache-2.0"


# ------------------------------------------------------------------------------------- scoring
def operating_points(model):
    """The N (or "MxN" grids) a model serves: every divisor of its capacity, largest first."""
    from keras_mimo.superposition import allowed_superpositions

    capacity = model.capacity
    if isinstance(capacity, (tuple, list)):
        return [
            f"{m}x{n}"
            for m in allowed_superpositions(capacity[0])
            for n in allowed_superpositions(capacity[1])
        ][::-1]
    return sorted(allowed_superpositions(capacity), reverse=True)


def set_operating_point(model, point):
    if isinstance(point, str) and "x" in point:
        model.grid = tuple(int(p) for p in point.split("x"))
    else:
        model.superposition = int(point)


def accuracy_per_point(model, examples, labels, points, batch_size=500):
    """``{str(point): percent correct}`` of ``model`` on raw ``examples`` at each point."""
    import numpy as np

    results = {}
    for point in points:
        set_operating_point(model, point)
        logits = model.predict(examples, batch_size=batch_size, verbose=0)
        if len(logits) != len(labels):
            raise PresetError(f"{len(logits)} rows of logits for {len(labels)} examples.")
        results[str(point)] = round(100.0 * float(np.mean(np.argmax(logits, -1) == labels)), 2)
    return results


def inference_jit_compile():
    """What timed inference compiles with: Keras' own default for the backend ("auto": jit on
    JAX, no XLA for TensorFlow on a CPU), what a user who calls ``predict`` gets."""
    return "auto"


def throughput_per_point(
    models, examples, batch_size=THROUGHPUT_BATCH, repeats=THROUGHPUT_REPEATS, block=3
):
    """Examples per second of each ``(label, model, point)`` in ``models``.

    Every model is compiled for inference (:func:`inference_jit_compile`) and runs
    ``model.predict_on_batch`` (the compiled predict function) on the same batch of
    ``batch_size`` raw examples. The cases take turns in ``repeats`` rounds, so a slow spell of
    the machine hits all of them alike; in each round a case runs one untimed call and then
    ``block`` timed ones in a row, as a user serving one N does (alternating N call by call
    would time cold caches instead). Returns ``{label: examples per second}`` from the median
    call of all rounds.
    """
    from keras_mimo.bench.timing import block_medians

    batch = examples[:batch_size]
    if len(batch) < batch_size:
        raise PresetError(f"throughput needs {batch_size} examples, got {len(batch)}.")
    jit_compile = inference_jit_compile()
    for model in {id(m): m for _, m, _ in models}.values():
        model.compile(jit_compile=jit_compile)

    def case(model, point):
        def run():
            set_operating_point(model, point)
            model.predict_on_batch(batch)

        return run

    runs = {label: case(model, point) for label, model, point in models}
    seconds = block_medians(runs, repeats, block)
    return {label: round(batch_size / value, 1) for label, value in seconds.items()}


def throughput_setting(batch_size=THROUGHPUT_BATCH, repeats=THROUGHPUT_REPEATS):
    import keras

    threads = os.environ.get("TF_NUM_INTRAOP_THREADS") or str(os.cpu_count())
    return (
        f"Keras {keras.__version__} on {keras.backend.backend()} (jit_compile='auto'), "
        f"{platform.machine()} CPU, "
        f"{threads} threads; predict_on_batch on {batch_size} raw test images, median of "
        f"{repeats} rounds of 3 calls in a row, the N taking turns"
    )


# ---------------------------------------------------------------------------------- run -> preset
_FLAGS = (
    ("epochs", "--epochs"),
    ("batch_size", "--batch-size"),
    ("lr", "--lr"),
    ("mixup_alpha", "--mixup-alpha"),
    ("seed", "--seed"),
    ("steps", "--steps"),
    ("warmup_steps", "--warmup-steps"),
    ("mimo_warmup_steps", "--mimo-warmup-steps"),
    ("train_split", "--train-split"),
    ("eval_split", "--eval-split"),
)


def train_command(run_config, output):
    """The ``keras-mimo train`` command that reproduces a run from its ``config.json``."""
    from keras_mimo.training.recipes import get_recipe

    recipe = get_recipe(run_config["name"])
    words = ["keras-mimo", "train", "--recipe", recipe.name]
    for field, flag in _FLAGS:
        if field in run_config and run_config[field] != getattr(recipe, field, None):
            words += [flag, str(run_config[field])]
    if run_config.get("grid") and list(run_config["grid"]) != list(recipe.grid or ()):
        words += ["--grid", "x".join(str(g) for g in run_config["grid"])]
    precision = run_config.get("mixed_precision")
    if precision and precision not in ("float32", "off", None):
        words += ["--mixed-precision", precision.replace("mixed_", "")]
    if run_config.get("isometry_every", 1) != 1:
        words += ["--isometry-every", str(run_config["isometry_every"])]
    for key, value in sorted(run_config.get("model_overrides", {}).items()):
        if recipe.model_overrides.get(key) != value:
            words += ["--model-override", f"{key}={json.dumps(value)}"]
    words += ["--output", output]
    return " ".join(words)


def _float32_copy(model, preprocessing):
    """The model rebuilt in float32 with ``preprocessing``, holding the same weights."""
    from keras_mimo.presets.format import model_config, preset_classes

    config = model_config(model)
    arguments = dict(config["config"], preprocessing=preprocessing)
    copy = preset_classes()[config["class_name"]].from_config(arguments)
    copy.set_weights(model.get_weights())
    return copy


def image_preprocessing(dataset):
    """The ``ImagePreprocessing`` arguments that turn raw ``dataset`` images into network input."""
    from keras_mimo.data import image_dataset_spec

    spec = image_dataset_spec(dataset)
    return dict(
        raw_shape=tuple(spec.raw_shape),
        center_crop=spec.center_crop,
        mean=tuple(spec.channel_mean),
        std=tuple(spec.channel_std),
        scale=1 / 255,
    )


def full_test_split(dataset, data_dir=None, split="test"):
    """``(uint8 images, int64 labels)`` of a whole split, in stored order."""
    import numpy as np

    from keras_mimo.data import load_image_split

    pairs = list(
        load_image_split(dataset, split, data_dir=data_dir).batch(10000).as_numpy_iterator()
    )
    images = np.concatenate([p[0] for p in pairs])
    labels = np.concatenate([p[1] for p in pairs])
    return images, labels


def export_run(
    run_folder, name=None, zoo=None, checkpoint="last.keras", data_dir=None, baseline=None
):
    """Writes the model of a finished image training run as preset ``zoo/<name>``; returns the
    metadata. ``baseline`` names the preset the demo compares it with (its WideResNet)."""
    import keras

    import keras_mimo.models  # noqa: F401  (registers the classes for load_model)
    from keras_mimo.presets.bundled import describe_bundled, load_bundled
    from keras_mimo.presets.format import save_to_preset

    run_config = read_json(os.path.join(run_folder, "config.json"), run_folder)
    results = read_json(os.path.join(run_folder, "results.json"), run_folder)
    name = name or run_config["name"]
    info = get_dataset(run_config["dataset"])
    if info.family != "image":
        raise PresetError(f"export_run takes image runs; {name} trained on {info.title}.")
    trained = keras.saving.load_model(os.path.join(run_folder, checkpoint), compile=False)
    preprocessing = image_preprocessing(info.name)
    model = _float32_copy(trained, preprocessing)
    points = operating_points(model)
    test_images, test_labels = full_test_split(info.name, data_dir)
    bundled_images, bundled_labels = load_bundled(info.name)
    accuracy = accuracy_per_point(model, test_images, test_labels, points)
    accuracy_bundled = accuracy_per_point(model, bundled_images, bundled_labels, points)
    rates = throughput_per_point([(str(point), model, point) for point in points], bundled_images)
    output = f"runs/zoo/{name}"
    metadata = dict(
        description=run_config["description"],
        architecture=run_config["architecture"],
        recipe=run_config["name"],
        dataset=info.name,
        data_license=info.license,
        data_source=info.source,
        class_names=list(info.labels),
        preprocessing=(
            f"uint8 {tuple(preprocessing['raw_shape'])} -> centre {preprocessing['center_crop']}"
            f"x{preprocessing['center_crop']} crop -> (x / 255 - {preprocessing['mean']}) / "
            f"{preprocessing['std']}"
        ),
        accuracy=accuracy,
        accuracy_bundled=accuracy_bundled,
        test_split=f"the full {info.title} test split ({len(test_labels)} images)",
        bundled_subset=describe_bundled(info.name),
        throughput=dict(
            per_n=rates,
            batch=THROUGHPUT_BATCH,
            setting=throughput_setting(),
            command=f"keras-mimo demo --preset {name}",
        ),
        train_command=train_command(run_config, output),
        eval_command=f"keras-mimo evaluate --preset {name} --superposition "
        + ",".join(str(p) for p in points),
        train_time_s=results.get("train_time_s"),
        epochs=results.get("epochs"),
        trained_as=_trained_as(run_config),
        baseline=baseline,
        license=WEIGHTS_LICENSE,
    )
    metadata = {key: value for key, value in metadata.items() if value is not None}
    set_operating_point(model, points[0])  # the preset loads at its capacity, the fastest N
    folder = (zoo_root() if zoo is None else pathlib.Path(zoo)) / name
    save_to_preset(model, folder, overwrite=True, **metadata)
    refresh_zoo(zoo)
    return read_json(os.path.join(folder, METADATA_FILE), str(folder))


def _trained_as(run_config):
    if run_config.get("dynamic_p"):
        return (
            f"dynamic: each batch at N = capacity with probability {run_config['dynamic_p']}, "
            f"else at N = {run_config.get('dynamic_low', 1)}"
        )
    return "fixed N = capacity"


# ------------------------------------------------------------------------------------ zoo index
def zoo_presets(zoo=None):
    """``{name: metadata}`` of every preset directory in the zoo, sorted by name."""
    root = zoo_root() if zoo is None else os.fspath(zoo)
    presets = {}
    for entry in sorted(os.listdir(root)):
        folder = os.path.join(root, entry)
        if os.path.isfile(os.path.join(folder, METADATA_FILE)):
            presets[entry] = read_json(os.path.join(folder, METADATA_FILE), folder)
    return presets


def pins_of(zoo=None):
    """``{name: {"sha256": {file: hash}, "summary": {...}}}`` of every preset in the zoo."""
    root = zoo_root() if zoo is None else os.fspath(zoo)
    pins = {}
    for name, metadata in zoo_presets(zoo).items():
        folder = os.path.join(root, name)
        pins[name] = {
            "sha256": {f: file_sha256(os.path.join(folder, f)) for f in PRESET_FILES},
            "summary": summary_of(metadata),
        }
    return pins


def summary_of(metadata):
    """What ``keras-mimo presets`` shows of a preset, without reading its folder."""
    return {
        key: metadata.get(key)
        for key in ("class_name", "architecture", "dataset", "capacity", "parameter_count")
    } | {"accuracy": metadata.get("accuracy", {})}


def results_rows(presets):
    """One row per preset and operating point: the zoo's results.csv."""
    rows = []
    for name, metadata in presets.items():
        rates = metadata.get("throughput", {}).get("per_n", {})
        for point, accuracy in metadata.get("accuracy", {}).items():
            rows.append(
                dict(
                    preset=name,
                    architecture=metadata.get("architecture"),
                    dataset=metadata.get("dataset"),
                    capacity=metadata.get("capacity"),
                    n=point,
                    test_accuracy=accuracy,
                    bundled_accuracy=metadata.get("accuracy_bundled", {}).get(point),
                    images_per_second=rates.get(point),
                    parameters=metadata.get("parameter_count"),
                    epochs=metadata.get("epochs"),
                    train_time_s=metadata.get("train_time_s"),
                    train_command=metadata.get("train_command"),
                )
            )
    return rows


def _write_text(path, text):
    temporary = f"{path}.tmp-{os.getpid()}"
    with open(temporary, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    os.replace(temporary, path)


def refresh_zoo(zoo=None):
    """Regenerates the pinned hashes, ``zoo/README.md`` and ``zoo/results.csv`` from the zoo."""
    from keras_mimo.presets.zoo_readme import zoo_readme

    root = zoo_root() if zoo is None else os.fspath(zoo)
    presets = zoo_presets(zoo)
    rows = results_rows(presets)
    buffer = io.StringIO()
    fields = list(rows[0]) if rows else ["preset"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_text(os.path.join(root, "results.csv"), buffer.getvalue())
    _write_text(os.path.join(root, "README.md"), zoo_readme(presets, untrained_recipes()))
    if zoo is None:
        pins_path = os.path.join(os.path.dirname(__file__), PINS_FILE)
        _write_text(pins_path, json.dumps(pins_of(zoo), indent=2, sort_keys=True) + "\n")
        from keras_mimo.presets import registry

        registry._pins.cache_clear()
    return presets
