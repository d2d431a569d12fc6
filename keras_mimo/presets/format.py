"""The preset directory: what is written, how it is checked, how a model is built back from it.

A preset is a directory with KerasHub's file names:

================  ==============================================================================
file              what it holds
================  ==============================================================================
config.json       ``{"class_name": ..., "config": ...}``: the model class and its constructor
                  arguments (``get_config()``), preprocessing included
model.weights.h5  the weights (``model.save_weights``: HDF5, no pickle)
metadata.json     what the model is and how well it does: architecture, dataset, licence,
                  input, class names, capacity, accuracy per N, throughput, commands, and the
                  sha256 of every other file
README.md         the model card, generated from the metadata
================  ==============================================================================

Loading runs no code from the directory: the class comes from a fixed list of keras-mimo model
classes, the weights from HDF5, and every file is checked against its sha256 first.
"""

import hashlib
import json
import os
import pathlib
import shutil
import tempfile

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.weights.h5"
METADATA_FILE = "metadata.json"
CARD_FILE = "README.md"
PRESET_FILES = (CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE, CARD_FILE)
HASHED_FILES = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)  # metadata.json lists their sha256


class PresetError(ValueError):
    """A preset that cannot be used as asked: wrong class, missing file, bad location."""


class PresetIntegrityError(PresetError):
    """A preset file whose sha256 is not the expected one (corrupt, truncated or altered)."""


def file_sha256(path):
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file_hash(path, expected, origin):
    """A ``PresetIntegrityError`` naming the file and both hashes unless ``path`` hashes to
    ``expected``."""
    if not os.path.isfile(path):
        raise PresetError(
            f"{origin}: {os.path.basename(path)} is missing from {os.path.dirname(path)}."
        )
    actual = file_sha256(path)
    if actual != expected:
        raise PresetIntegrityError(
            f"{origin}: {os.path.basename(path)} has sha256 {actual}, expected {expected} "
            f"({os.path.getsize(path)} bytes): the file is corrupt, truncated or altered. "
            "Delete it (a download is fetched again) or restore it."
        )


def read_json(path, origin):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise PresetError(
            f"{origin}: {os.path.basename(path)} is missing from {os.path.dirname(path) or '.'}: "
            f"a preset directory holds {', '.join(PRESET_FILES)}."
        ) from None
    except json.JSONDecodeError as error:
        raise PresetIntegrityError(f"{origin}: {path} is not valid JSON ({error}).") from None


def read_metadata(directory, origin=None, pinned=None):
    """``metadata.json`` of a preset directory, after checking it against ``pinned`` hashes
    (``{file: sha256}``, the registry's for built-in presets) where given."""
    origin = origin or str(directory)
    path = os.path.join(directory, METADATA_FILE)
    if pinned and METADATA_FILE in pinned:
        check_file_hash(path, pinned[METADATA_FILE], origin)
    metadata = read_json(path, origin)
    if not isinstance(metadata, dict) or not isinstance(metadata.get("sha256"), dict):
        raise PresetError(f"{origin}: {METADATA_FILE} has no 'sha256' table of the preset's files.")
    return metadata


def verify_preset(directory, origin=None, pinned=None):
    """Checks every file of a preset directory against its sha256; returns the metadata."""
    origin = origin or str(directory)
    metadata = read_metadata(directory, origin, pinned)
    expected = dict(metadata["sha256"])
    for name, digest in (pinned or {}).items():
        if name != METADATA_FILE and expected.get(name) != digest:
            raise PresetIntegrityError(
                f"{origin}: {METADATA_FILE} lists sha256 {expected.get(name)} for {name}, but the "
                f"registry pins {digest}."
            )
    for name in HASHED_FILES:
        if name not in expected:
            raise PresetError(f"{origin}: {METADATA_FILE} lists no sha256 for {name}.")
        check_file_hash(os.path.join(directory, name), expected[name], origin)
    return metadata


# ---------------------------------------------------------------------------------------- classes
def preset_classes():
    """The model classes a preset may name: keras-mimo's own, nothing else."""
    from keras_mimo.models import MIMOConv, MIMOFormer, Performer, WideResNet

    return {cls.__name__: cls for cls in (MIMOConv, WideResNet, MIMOFormer, Performer)}


def _preset_class(class_name, origin, expected_class=None):
    classes = preset_classes()
    if class_name not in classes:
        raise PresetError(
            f"{origin}: {CONFIG_FILE} names class {class_name!r}, which is not a keras-mimo model "
            f"class ({', '.join(classes)})."
        )
    cls = classes[class_name]
    if expected_class is not None and not issubclass(cls, expected_class):
        raise PresetError(
            f"{origin} is a {class_name} preset, not a {expected_class.__name__} one: load it with "
            f"{class_name}.from_preset(...) or keras_mimo.from_preset(...)."
        )
    return cls


def model_config(model):
    """``{"class_name", "config"}`` of a keras-mimo model: its constructor arguments, in float32."""
    config = dict(model.get_config())
    config.pop("dtype", None)  # presets load in float32; mixed precision is a training choice
    config.pop("trainable", None)
    return {"class_name": type(model).__name__, "config": config}


def build_model(
    config, origin, *, num_classes=None, include_preprocessing=True, expected_class=None
):
    """The model a ``config.json`` describes (random weights), with ``num_classes`` classes and
    with or without its preprocessing."""
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        raise PresetError(f"{origin}: {CONFIG_FILE} must hold 'class_name' and 'config'.")
    cls = _preset_class(config["class_name"], origin, expected_class)
    arguments = dict(config["config"])
    if num_classes is not None:
        from keras_mimo.checks import positive_int

        arguments["num_classes"] = positive_int("num_classes", num_classes)
    if not include_preprocessing:
        arguments.pop("preprocessing", None)
    return cls.from_config(arguments)


def _copy_all_but_classifier(source, target):
    for old, new in zip(source.layers, target.layers):
        if old.name != new.name:
            raise PresetError(f"layer {old.name!r} of the preset has no match in the new model.")
        if old.name != "classifier":
            new.set_weights(old.get_weights())


def load_preset(
    directory,
    origin=None,
    *,
    num_classes=None,
    load_weights=True,
    include_preprocessing=True,
    expected_class=None,
    pinned=None,
):
    """Builds the model of a verified preset directory (see :func:`keras_mimo.from_preset`)."""
    origin = origin or str(directory)
    verify_preset(directory, origin, pinned)
    config = read_json(os.path.join(directory, CONFIG_FILE), origin)
    preset_classes_count = config.get("config", {}).get("num_classes")
    new_head = num_classes is not None and num_classes != preset_classes_count
    model = build_model(
        config, origin, include_preprocessing=include_preprocessing, expected_class=expected_class
    )
    if load_weights:
        model.load_weights(os.path.join(directory, WEIGHTS_FILE))
    if new_head:
        fresh = build_model(
            config,
            origin,
            num_classes=num_classes,
            include_preprocessing=include_preprocessing,
            expected_class=expected_class,
        )
        if load_weights:
            _copy_all_but_classifier(model, fresh)
        model = fresh
    return model


# ----------------------------------------------------------------------------------------- saving
def input_description(model):
    """``{"shape", "dtype"}`` of one raw example the model takes."""
    if hasattr(model, "raw_image_shape"):
        raw = getattr(model, "preprocessing", None) is not None
        return {"shape": list(model.raw_image_shape), "dtype": "uint8" if raw else "float32"}
    return {"shape": [model.max_length], "dtype": "int32"}


def capacity_of(model):
    """The capacity as metadata holds it: N, or ``"MxN"`` for a MIMOFormer grid."""
    capacity = model.capacity
    if isinstance(capacity, (tuple, list)):
        return f"{capacity[0]}x{capacity[1]}"
    return int(capacity)


def save_to_preset(model, directory, overwrite=False, **metadata):
    """Writes ``model`` as a preset directory that :func:`keras_mimo.from_preset` loads.

    ``metadata`` is stored in ``metadata.json`` beside what is computed from the model
    (``class_name``, ``parameter_count``, ``input``, ``capacity``, ``num_classes``,
    ``keras_mimo_version``, ``sha256``). The directory is written in full next to its final place
    and renamed into it, so a failed save leaves nothing half-written; an existing preset is
    replaced only with ``overwrite=True``.

    Example:
        >>> model = keras_mimo.from_preset("mimoconv-10-2.fashion-mnist-dynamic", num_classes=10)
        >>> model.fit(images, labels, epochs=1)  # doctest: +SKIP
        >>> keras_mimo.save_to_preset(model, "my-preset", dataset="mnist")  # doctest: +SKIP
    """
    import keras

    import keras_mimo
    from keras_mimo.presets.card import model_card

    if not isinstance(model, tuple(preset_classes().values())):
        raise PresetError(
            f"save_to_preset takes a keras-mimo model ({', '.join(preset_classes())}), got "
            f"{type(model).__name__}."
        )
    directory = pathlib.Path(directory)
    if directory.exists() and any(directory.iterdir()) and not overwrite:
        raise PresetError(
            f"{directory} exists and is not empty: pass overwrite=True to replace it, or another "
            "directory."
        )
    reserved = {"sha256", "class_name", "parameter_count", "keras_mimo_version"}
    clash = sorted(reserved & set(metadata))
    if clash:
        raise PresetError(f"metadata keys {clash} are computed by save_to_preset: leave them out.")
    info = {
        "class_name": type(model).__name__,
        "num_classes": int(model.num_classes),
        "capacity": capacity_of(model),
        "input": input_description(model),
        "parameter_count": int(model.count_params()),
        "keras_mimo_version": keras_mimo.__version__,
        "keras_version": keras.__version__,
        **metadata,
    }
    parent = directory.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".tmp-{directory.name}-", dir=parent))
    try:
        with open(staging / CONFIG_FILE, "w", encoding="utf-8") as handle:
            json.dump(model_config(model), handle, indent=2, sort_keys=True)
            handle.write("\n")
        model.save_weights(staging / WEIGHTS_FILE)
        with open(staging / CARD_FILE, "w", encoding="utf-8") as handle:
            handle.write(model_card(directory.name, info))
        info["sha256"] = {name: file_sha256(staging / name) for name in HASHED_FILES}
        with open(staging / METADATA_FILE, "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2, sort_keys=True)
            handle.write("\n")
        if directory.exists():
            old = directory.with_name(f".old-{directory.name}-{os.getpid()}")
            os.replace(directory, old)
            os.replace(staging, directory)
            shutil.rmtree(old)
        else:
            os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info
