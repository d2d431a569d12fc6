"""``from_preset`` and ``preset_metadata``: a preset name, directory, URL or ``hf://`` location
to a ready model."""

import os

from keras_mimo.presets import registry
from keras_mimo.presets.format import PresetError, load_preset, read_metadata, verify_preset
from keras_mimo.presets.remote import fetch_preset, is_remote


def resolve_location(location):
    """``(local folder, origin for messages, pinned hashes or None)`` of a preset location.

    A built-in name (``_`` and ``-`` alike) is its folder in the zoo, checked against the hashes
    pinned in the registry; a directory is used as it is; an http(s) URL or ``hf://OWNER/NAME``
    is downloaded into the Keras cache. Names are tried before directories only when no
    directory of that name exists.
    """
    if not isinstance(location, (str, os.PathLike)):
        raise PresetError(
            f"location={location!r} must be a preset name, a directory, an http(s) URL or "
            "hf://OWNER/NAME."
        )
    location = os.fspath(location)
    if is_remote(location):
        return fetch_preset(location), location, None
    if os.path.isdir(location):
        return location, location, None
    if os.path.sep in location or location.startswith("."):
        raise PresetError(
            f"{location} is not a directory: pass a preset directory or a preset name."
        )
    name, entry = registry.find_builtin(location)
    if entry is None:
        raise PresetError(registry.untrained_message(name))
    folder = registry.zoo_root() / name
    return str(folder), f"preset {name!r}", entry["sha256"]


def preset_metadata(location):
    """The metadata dict of a preset (name, directory, URL or ``hf://``), without building it.

    Example:
        >>> import keras_mimo
        >>> keras_mimo.preset_metadata("mimoconv-10-2.fashion-mnist-dynamic")["capacity"]
        4
    """
    folder, origin, pinned = resolve_location(location)
    return read_metadata(folder, origin, pinned)


def from_preset(
    location,
    num_classes=None,
    load_weights=True,
    include_preprocessing=True,
    compile=True,
    expected_class=None,
):
    """The pretrained model of a preset: a name from :func:`list_presets`, a local preset
    directory, an http(s) URL of one, or ``hf://OWNER/NAME[@REVISION]``.

    Every file is checked against its sha256 (pinned in the registry for built-in names, from
    ``metadata.json`` otherwise) before anything is built; no code from the preset runs.

    Args:
        location: where the preset is.
        num_classes: classes of a new, freshly initialised classifier (fine-tuning); every other
            weight is the preset's. None keeps the preset's classifier.
        load_weights: False builds the architecture with random weights.
        include_preprocessing: True (default): image models take the dataset's raw examples
            (uint8 ``(batch, 28, 28, 1)`` for the MNIST family) and crop and normalise them
            themselves; False gives the bare network, which takes preprocessed float images.
            Token models take integer ids either way.
        compile: compile for ``model.fit`` (Adam 1e-3, sparse cross-entropy on the logits,
            accuracy); call ``model.compile`` again for other settings.
        expected_class: refuse a preset of any other model class (``Class.from_preset`` sets
            it).

    Example:
        >>> import keras_mimo
        >>> model = keras_mimo.from_preset("mimoconv-10-2.fashion-mnist-dynamic")
        >>> model.superposition = 4  # four images per pass of the body
        >>> logits = model.predict(images)  # doctest: +SKIP
    """
    folder, origin, pinned = resolve_location(location)
    model = load_preset(
        folder,
        origin,
        num_classes=num_classes,
        load_weights=load_weights,
        include_preprocessing=include_preprocessing,
        expected_class=expected_class,
        pinned=pinned,
    )
    if compile:
        import keras

        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    return model


def check_preset(location):
    """Verifies every file of a preset against its hashes; returns its metadata."""
    folder, origin, pinned = resolve_location(location)
    return verify_preset(folder, origin, pinned)
