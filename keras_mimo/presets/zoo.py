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
import math
import os
import pathlib
import platform
import shlex

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
LRA_THROUGHPUT_BATCH = 256  # sequences per predict call
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


def group_size(point):
    """How many examples one superposition of ``point`` holds: N, or M * N for a grid "MxN"."""
    return math.prod(int(part) for part in str(point).split("x"))


def accuracy_per_point(model, examples, labels, points, batch_size=500):
    """``{str(point): percent correct}`` of ``model`` on raw ``examples`` at each point.

    The examples are superposed in consecutive groups, in their given order (the last group
    padded): ``batch_size`` is rounded up to a multiple of the group size, so the figure does
    not depend on it and equals ``model.predict(examples)`` at any batch size the group size
    divides (Keras' default 32 included, for N up to 32).
    """
    import numpy as np

    results = {}
    for point in points:
        set_operating_point(model, point)
        group = group_size(point)
        aligned = -(-batch_size // group) * group
        logits = model.predict(examples, batch_size=aligned, verbose=0)
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
        f"{threads} threads; predict_on_batch on {batch_size} raw test examples, median of "
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
    ("eval_frequency", "--eval-frequency"),
    ("eval_steps", "--eval-steps"),
    ("train_split", "--train-split"),
    ("eval_split", "--eval-split"),
)


def train_command(run_config, output):
    """The ``keras-mimo train`` command that reproduces a run from its ``config.json``."""
    from keras_mimo.training.recipes import get_recipe

    if run_config["name"].endswith("-quick"):  # a --quick smoke run: the flag says it all
        base = run_config["name"][: -len("-quick")]
        return f"keras-mimo train --recipe {base} --quick --output {output}"
    recipe = get_recipe(run_config["name"])
    words = ["keras-mimo", "train", "--recipe", recipe.name]
    for field, flag in _FLAGS:
        if field in run_config and run_config[field] != getattr(recipe, field, None):
            words += [flag, str(run_config[field])]
    if run_config.get("grid") and list(run_config["grid"]) != list(recipe.grid or ()):
        words += ["--grid", "x".join(str(g) for g in run_config["grid"])]
    if run_config.get("augment") is False and recipe.augment:
        words.append("--no-augment")
    precision = run_config.get("mixed_precision")
    if precision and precision not in ("float32", "off", None):
        words += ["--mixed-precision", precision.replace("mixed_", "")]
    if run_config.get("isometry_every", 1) != 1:
        words += ["--isometry-every", str(run_config["isometry_every"])]
    implied = {}  # model arguments that --grid and --max-length set themselves
    if run_config.get("grid"):
        implied["capacity"] = list(run_config["grid"])
    length = (run_config.get("data_options") or {}).get("max_length")
    if length is not None and length != (recipe.data_options or {}).get("max_length"):
        words += ["--max-length", str(length)]
        implied["max_length"] = 1 << max(0, int(length) - 1).bit_length()
    for key, value in sorted(run_config.get("model_overrides", {}).items()):
        if recipe.model_overrides.get(key) != value and implied.get(key) != value:
            override = f"{key}={json.dumps(value, separators=(',', ':'))}"
            words += ["--model-override", shlex.quote(override)]
    if recipe.family != "image":
        words += ["--data-dir", "DATA"]
    words += ["--output", output]
    return " ".join(words)


def _float32_copy(model, preprocessing):
    """The model rebuilt in float32 (with ``preprocessing``, for an image model), holding the same
    weights."""
    from keras_mimo.presets.format import model_config, preset_classes

    config = model_config(model)
    arguments = dict(config["config"])
    if hasattr(model, "image_shape"):
        arguments["preprocessing"] = preprocessing
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


def _image_material(trained, info, data_dir, bundled_root):
    """The float32 preset model of an image run, its full test split and bundled subset."""
    from keras_mimo.presets.bundled import describe_bundled, load_bundled

    preprocessing = image_preprocessing(info.name)
    images, labels = full_test_split(info.name, data_dir)
    return dict(
        model=_float32_copy(trained, preprocessing),
        test=(images, labels),
        bundled=load_bundled(info.name, root=bundled_root),
        batch=THROUGHPUT_BATCH,
        metadata=dict(
            preprocessing=(
                f"uint8 {tuple(preprocessing['raw_shape'])} -> centre "
                f"{preprocessing['center_crop']}x{preprocessing['center_crop']} crop -> "
                f"(x / 255 - {preprocessing['mean']}) / {preprocessing['std']}"
            ),
            test_split=f"the full {info.title} test split ({len(labels)} images)",
            bundled_subset=describe_bundled(info.name),
        ),
    )


def _lra_material(trained, info, run_config, data_dir, bundled_root):
    """The float32 preset model of a Long Range Arena run, its test split and bundled subset
    (written from that test split into ``zoo/data/<task>`` when it is not there yet).

    A task that reads an image dataset as tokens (seq-fashion-mnist) finds its data as the image
    recipes do (``data_dir`` optional) and reads the bundled images of that dataset."""
    from keras_mimo.presets.bundled import (
        IMAGES_AS_TOKENS,
        bundled_folder,
        describe_bundled,
        load_bundled,
        write_bundled,
    )

    if data_dir is None and info.name not in IMAGES_AS_TOKENS:
        raise PresetError(
            f"exporting a {info.title} run needs --data-dir: the folder of the data it trained on."
        )
    options = dict(run_config.get("data_options") or {})
    if (
        info.name in IMAGES_AS_TOKENS  # writes nothing when the images are bundled already
        or not (bundled_folder(info.name, bundled_root) / "basic_test.tsv").is_file()
    ):
        write_bundled(info.name, data_dir=data_dir, root=bundled_root)
    tokens, labels = lra_examples(info.name, "test", data_dir, options)
    return dict(
        model=_float32_copy(trained, None),
        test=(tokens, labels),
        bundled=load_bundled(info.name, root=bundled_root, **options),
        batch=LRA_THROUGHPUT_BATCH,
        metadata=dict(
            data_options=options,
            test_split=f"the test split of the data it trained on ({len(labels)} sequences)",
            bundled_subset=describe_bundled(info.name),
        ),
    )


def lra_examples(task, split, data_dir, options):
    """``(int32 token ids, int64 labels)`` of a whole Long Range Arena split, in stored order."""
    import numpy as np

    from keras_mimo.data.lra import lra_dataset

    batches = list(
        lra_dataset(
            task, split, data_dir=data_dir, batch_size=256, grid=1, **options
        ).as_numpy_iterator()
    )
    return (
        np.concatenate([b[0] for b in batches]).astype("int32"),
        np.concatenate([b[1] for b in batches]).astype("int64"),
    )


def export_run(
    run_folder,
    name=None,
    zoo=None,
    checkpoint=None,
    data_dir=None,
    baseline=None,
    data_command=None,
    bundled_root=None,
):
    """Writes the model of a finished training run as preset ``zoo/<name>``; returns the metadata.

    Image runs export their last epoch's model (``last.keras``), Long Range Arena runs the one
    of their best dev accuracy (``best.keras``), as their results report them. ``baseline``
    names the preset the demo compares an image preset with (its WideResNet); ``data_command``
    records how an LRA run's data were made (the ListOps generator's command).
    """
    import keras

    import keras_mimo.models  # noqa: F401  (registers the classes for load_model)
    from keras_mimo.presets.format import save_to_preset

    run_config = read_json(os.path.join(run_folder, "config.json"), run_folder)
    results = read_json(os.path.join(run_folder, "results.json"), run_folder)
    name = name or run_config["name"]
    info = get_dataset(run_config["dataset"])
    checkpoint = checkpoint or ("last.keras" if info.family == "image" else "best.keras")
    trained = keras.saving.load_model(os.path.join(run_folder, checkpoint), compile=False)
    if info.family == "image":
        material = _image_material(trained, info, data_dir, bundled_root)
    else:
        material = _lra_material(trained, info, run_config, data_dir, bundled_root)
    model = material["model"]
    points = operating_points(model)
    accuracy = accuracy_per_point(model, *material["test"], points)
    accuracy_bundled = accuracy_per_point(model, *material["bundled"], points)
    batch = min(material["batch"], len(material["bundled"][0]))
    rates = throughput_per_point(
        [(str(point), model, point) for point in points], material["bundled"][0], batch_size=batch
    )
    data = "" if info.family == "image" else " --data-dir DATA"
    metadata = dict(
        description=run_config["description"],
        architecture=run_config["architecture"],
        recipe=run_config["name"],
        dataset=info.name,
        data_license=info.license,
        data_source=info.source,
        data_command=data_command,
        class_names=list(info.labels),
        **material["metadata"],
        accuracy=accuracy,
        accuracy_bundled=accuracy_bundled,
        throughput=dict(
            per_n=rates,
            batch=batch,
            setting=throughput_setting(batch),
            command=f"keras-mimo demo --preset {name}",
        ),
        train_command=train_command(run_config, f"runs/zoo/{name}"),
        eval_command=f"keras-mimo evaluate --preset {name}{data} --superposition "
        + ",".join(str(p) for p in points),
        train_time_s=results.get("train_time_s"),
        epochs=results.get("epochs"),
        steps=results.get("steps") or run_config.get("steps"),
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
