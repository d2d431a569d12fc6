"""Shared test harness: one call checks a layer's or model's Keras contract (KerasHub / run_layer_test style)."""

import keras
import numpy as np


def random_inputs(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def assert_close(actual, expected, rtol=1e-4, scale=None):
    """Max abs difference within ``rtol`` times the expected values' scale (max |expected|)."""
    actual = np.asarray(keras.ops.convert_to_numpy(actual), dtype="float64")
    expected = np.asarray(keras.ops.convert_to_numpy(expected), dtype="float64")
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    scale = float(np.max(np.abs(expected))) if scale is None else scale
    error = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    assert error <= rtol * max(scale, 1e-12), (
        f"max abs error {error:.3g} exceeds {rtol} x scale {scale:.3g}"
    )


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
    """Builds ``layer_cls(**init_kwargs)``, calls it, and checks config, serialization, weights and losses.

    Returns the layer and its output on a fixed random input.
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
    return layer, keras.ops.convert_to_numpy(outputs)
