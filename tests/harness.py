"""Shared test harness: one call checks a layer's or a model's Keras contract.

In the style of KerasHub's ``TestCase.run_layer_test`` / ``run_model_saving_test`` /
``run_backbone_test`` (keras_hub/src/tests/test_case.py): a model family's test is a small
configuration plus one call of :func:`run_model_contract`; a layer's, one call of
:func:`run_layer_contract`. The small helpers every test file needs (``to_numpy``,
``random_inputs``, ``assert_close``, ``pad_like_the_model``) live here too.
"""

import inspect
import types

import keras
import numpy as np

# --------------------------------------------------------------------------- small helpers


def to_numpy(x):
    """Any backend tensor (or numpy array, or Python number) as a numpy array.

    Example:
        >>> to_numpy(keras.ops.ones((2,))).tolist()
        [1.0, 1.0]
    """
    return np.asarray(keras.ops.convert_to_numpy(x))


def random_inputs(shape, seed=0):
    """Standard normal float32 numbers of ``shape``, repeatable by ``seed``."""
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def assert_close(actual, expected, rtol=1e-4, scale=None):
    """Max abs difference within ``rtol`` times the expected values' scale (max |expected|).

    Example:
        >>> assert_close([1.0, 2.0], [1.0, 2.0001], rtol=1e-4)
    """
    actual = np.asarray(to_numpy(actual), dtype="float64")
    expected = np.asarray(to_numpy(expected), dtype="float64")
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    scale = float(np.max(np.abs(expected))) if scale is None else scale
    error = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    assert error <= rtol * max(scale, 1e-12), (
        f"max abs error {error:.3g} exceeds {rtol} x scale {scale:.3g}"
    )


def _map(function, inputs):
    """``function`` applied to every array of ``inputs`` (one array, or a tuple / list of them)."""
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(function(x) for x in inputs)
    return function(inputs)


def batch_size_of(inputs):
    """Rows of ``inputs`` (the first array's, for a tuple of inputs)."""
    return len(inputs[0] if isinstance(inputs, (tuple, list)) else inputs)


def pad_like_the_model(inputs, n):
    """Numpy twin of ``keras_mimo.superposition.pad_to_multiple``: whole groups of ``n`` rows.

    The last, incomplete group is filled by cycling through its own rows; this gives the
    divisible batch whose outputs a padded batch's rows must equal.

    Example:
        >>> pad_like_the_model(np.arange(5), 4).tolist()
        [0, 1, 2, 3, 4, 4, 4, 4]
    """

    def pad(x):
        x = np.asarray(x)
        count = len(x)
        remainder = count % n
        if remainder == 0:
            return x
        start = count - remainder
        extra = start + np.arange(n - remainder) % remainder
        return np.concatenate([x, x[extra]], axis=0)

    return _map(pad, inputs)


# --------------------------------------------------------------------------- layers


def run_layer_contract(
    layer_cls,
    init_kwargs,
    input_shape,
    call_kwargs=None,
    expected_output_shape=None,
    expected_trainable_weights=None,
    expected_non_trainable_weights=0,
    expected_losses=0,
):
    """Builds ``layer_cls(**init_kwargs)``, calls it, checks config, serialization, weights, losses.

    Returns:
        The layer and its output (numpy) on a fixed random input of ``input_shape``.

    Example:
        >>> from keras_mimo.layers import UnbindingHead
        >>> layer, out = run_layer_contract(UnbindingHead, dict(capacity=2), (3, 5),
        ...                                 expected_output_shape=(6, 5))
    """
    call_kwargs = call_kwargs or {}
    layer = layer_cls(**init_kwargs)
    inputs = random_inputs(input_shape)
    outputs = layer(inputs, **call_kwargs)
    if expected_output_shape is not None:
        assert tuple(outputs.shape) == tuple(expected_output_shape)
    if expected_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_trainable_weights
    assert len(layer.non_trainable_weights) == expected_non_trainable_weights
    assert len(layer.losses) == expected_losses

    config = layer.get_config()
    for key, value in init_kwargs.items():
        assert key in config, f"get_config() lacks constructor argument {key!r}"
    clone = layer_cls.from_config(config)
    clone(inputs, **call_kwargs)
    clone.set_weights(layer.get_weights())
    assert_close(clone(inputs, **call_kwargs), outputs, rtol=1e-6)

    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is layer_cls
    assert revived.get_config() == config
    return layer, to_numpy(outputs)


# --------------------------------------------------------------------------- models


def _same(a, b):
    """Equal as a saved config holds them: lists and tuples alike."""
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def check_model_config(cls, model, init_kwargs):
    """``get_config()`` holds exactly the constructor arguments, ``from_config`` round-trips.

    Returns the config.

    Example:
        >>> from keras_mimo.models import WideResNet  # doctest: +SKIP
        >>> init = dict(depth=10, width=1, input_shape=(8, 8, 3))  # doctest: +SKIP
        >>> check_model_config(WideResNet, WideResNet(**init), init)  # doctest: +SKIP
    """
    config = model.get_config()
    arguments = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    extra = {"name", "trainable", "dtype"}
    missing, surplus = sorted(arguments - set(config)), sorted(set(config) - arguments - extra)
    assert not missing and not surplus, (
        f"get_config() keys differ from {cls.__name__}'s arguments: "
        f"missing {missing}, extra {surplus}"
    )
    for key, value in init_kwargs.items():
        assert _same(config[key], value), f"get_config()[{key!r}] = {config[key]!r} != {value!r}"
    clone = cls.from_config(config)
    assert type(clone) is cls and clone.get_config() == config
    return config


def _perturb_every_weight(model, seed=0):
    """Moves every float weight (trainable or not) by a few percent.

    Then none equals its seeded initial value: a loader that rebuilt any weight from the
    configuration cannot pass.
    """
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        if "float" not in keras.backend.standardize_dtype(variable.dtype):
            continue
        value = to_numpy(variable)
        noise = rng.uniform(0.95, 1.05, size=value.shape) + rng.normal(0, 1e-3, size=value.shape)
        variable.assign((value * noise).astype(value.dtype))


def _compare_rows(got, expected, what, rtol=1e-5, atol=1e-6):
    got, expected = to_numpy(got), to_numpy(expected)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    for row, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{what}: row {row}")


def check_padded_batches(model, inputs, leftovers=(1, 2, 3)):
    """Batches of ``N + r`` inputs give the rows of the same inputs in a divisible batch.

    ``r`` runs over ``leftovers`` (those below N), N is the model's current superposition; the
    divisible batch is the one the model pads to (the last group filled with its own inputs).
    Checked row by row, by a direct call and by ``predict`` in batches of N.

    Example:
        >>> model.superposition = model.capacity  # doctest: +SKIP
        >>> check_padded_batches(model, random_inputs((8, 8, 8, 3)))  # doctest: +SKIP
    """
    n = int(model.superposition)
    counts = sorted({n + r for r in leftovers if r < n}) or [n + 1]
    assert batch_size_of(inputs) >= max(counts), (
        f"the padded-batch check needs at least {max(counts)} inputs"
    )
    for count in counts:
        x = _map(lambda a: a[:count], inputs)
        reference = to_numpy(model(pad_like_the_model(x, n), training=False))[:count]
        _compare_rows(model(x, training=False), reference, f"a batch of {count} at N={n}")
    # predict in batches of N: the last batch, of the largest leftover, is padded in the loop
    predicted = model.predict(x, batch_size=n, verbose=0)
    _compare_rows(predicted, reference, f"predict({count} inputs, batch_size={n})")


def check_mixed_precision(cls, init_kwargs, model, inputs, policy="mixed_bfloat16", rtol=0.1):
    """Built and called under the global ``policy``: float32, finite logits of the right shape.

    With ``rtol``, also within ``rtol`` (of the largest logit) of ``model``, the float32 model
    whose weights it takes, at ``model``'s operating point. Returns the mixed-precision model.

    Example:
        >>> check_mixed_precision(MIMOConv, init, model, images)  # doctest: +SKIP
    """
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(policy)
        mixed = cls(**init_kwargs)
    finally:
        keras.config.set_dtype_policy(previous)
    assert mixed.dtype_policy.name == policy
    half = policy.split("_")[-1]
    assert any(
        layer.compute_dtype == half for layer in mixed._flatten_layers(include_self=False)
    ), f"no sublayer of {cls.__name__} computes in {half} under {policy}"
    mixed.set_weights(model.get_weights())
    if hasattr(model, "grid"):
        mixed.grid = model.grid
    else:
        mixed.superposition = model.superposition
    logits = mixed(inputs, training=False)
    assert keras.backend.standardize_dtype(logits.dtype) == "float32", logits.dtype
    assert tuple(logits.shape) == (batch_size_of(inputs), model.num_classes)
    assert np.isfinite(to_numpy(logits)).all()
    if rtol is not None:
        assert_close(logits, model(inputs, training=False), rtol=rtol)
    return mixed


def run_model_contract(
    cls,
    init_kwargs,
    inputs,
    tmp_path,
    *,
    superpositions=None,
    attribute="superposition",
    labels=None,
    learning_rate=0.05,
    every_weight_trains=True,
    leftovers=(1, 2, 3),
    mixed_precision="mixed_bfloat16",
    mixed_precision_rtol=0.1,
):
    """Checks the contract every superposed model keeps, in one call.

    1. ``get_config()`` holds exactly the constructor arguments (``init_kwargs`` among them,
       as given) and ``from_config`` round-trips.
    2. One ``fit`` step (SGD, sparse cross-entropy on ``labels``, default ``arange % classes``)
       gives a finite loss and changes the weights (every trainable one with
       ``every_weight_trains``).
    3. Every float weight is then perturbed, so none equals its seeded value, and a ``.keras``
       save / load gives the same weights and bit-identical outputs at every operating point in
       ``superpositions`` (values of ``model.<attribute>``: N, or MIMOFormer's grid; default:
       every N allowed by the capacity).
    4. At the capacity (N = ``model.superposition`` there), batches of N + 1, N + 2, N + 3
       inputs give, row by row, the outputs of the same inputs in the divisible batch the
       model pads to; by direct calls and by ``predict``.
    5. Built and called under the global ``mixed_precision`` policy (None skips it): float32,
       finite logits of the right shape, close to the float32 model's.

    Args:
        cls: the model class (MIMOConv, WideResNet, MIMOFormer, Performer, ...).
        init_kwargs: constructor arguments of a tiny configuration.
        inputs: a batch (array, or a tuple of arrays for two-input models) of at least N + 3
            rows; all of it is one training batch.
        tmp_path: a folder for the ``.keras`` file (pytest's ``tmp_path``).

    Returns:
        A namespace: ``model`` (trained, then perturbed), ``loaded``, ``history``,
        ``weights_before_fit`` and ``weights_after_fit`` (numpy, in ``model.weights`` order),
        for checks of a family's own.

    Example:
        >>> from keras_mimo.models import MIMOConv  # doctest: +SKIP
        >>> run_model_contract(  # doctest: +SKIP
        ...     MIMOConv,
        ...     dict(depth=10, width=1, initial_width=1, num_classes=5, capacity=4,
        ...          input_shape=(8, 8, 3), seed=7),
        ...     random_inputs((8, 8, 8, 3)),
        ...     tmp_path,
        ...     superpositions=[1, 2, 4],
        ... )
    """
    from keras_mimo.superposition import allowed_superpositions

    model = cls(**init_kwargs)
    check_model_config(cls, model, init_kwargs)
    if superpositions is None:
        superpositions = allowed_superpositions(model.capacity)
    batch = batch_size_of(inputs)
    labels = np.arange(batch) % model.num_classes if labels is None else labels

    # 2. one training step
    compile_options = {"jit_compile": False} if keras.backend.backend() == "tensorflow" else {}
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **compile_options,
    )
    before = [to_numpy(w).copy() for w in model.weights]
    history = model.fit(inputs, labels, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"]).all(), history.history
    after = [to_numpy(w).copy() for w in model.weights]
    changed = {
        w.path for w, b, a in zip(model.weights, before, after) if w.trainable and np.any(a != b)
    }
    trainable = {w.path for w in model.trainable_weights}
    if every_weight_trains:
        assert changed == trainable, f"weights a fit step left unchanged: {trainable - changed}"
    else:
        assert changed, "a fit step changed no weight"

    # 3. saving, on weights no seed can rebuild
    _perturb_every_weight(model)
    path = tmp_path / f"{cls.__name__}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is cls and loaded.get_config() == model.get_config()
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    for ours, theirs in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(to_numpy(theirs), to_numpy(ours), err_msg=ours.path)
    for point in superpositions:
        setattr(model, attribute, point)
        setattr(loaded, attribute, point)
        np.testing.assert_array_equal(
            to_numpy(loaded(inputs, training=False)),
            to_numpy(model(inputs, training=False)),
            err_msg=f"loaded model at {attribute}={point}",
        )

    # 4. padded batches at the capacity
    setattr(model, attribute, model.capacity)
    check_padded_batches(model, inputs, leftovers)

    # 5. mixed precision
    if mixed_precision:
        check_mixed_precision(
            cls, init_kwargs, model, inputs, policy=mixed_precision, rtol=mixed_precision_rtol
        )
    return types.SimpleNamespace(
        model=model,
        loaded=loaded,
        history=history,
        weights_before_fit=before,
        weights_after_fit=after,
    )
