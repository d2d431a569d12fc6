"""Contracts and maths of the binding, residual and unbinding layers."""

import keras
import numpy as np
import pytest
from harness import assert_close, pad_like_the_model, random_inputs, run_layer_contract, to_numpy

from keras_mimo.layers import (
    BindingRegularizer,
    IsometryRegularizer,
    PreActWideBlock,
    ShiftedReLU,
    SuperpositionBinding,
    UnbindingHead,
)
from keras_mimo.layers.binding import circulant_indices
from keras_mimo.layers.residual import batch_norm, stem_conv_then_batch_norm


def circular_convolution(x, key):
    """Numpy reference via the FFT: (key (*) x)[j] = sum_m key[m] x[j - m]."""
    return np.real(np.fft.ifft(np.fft.fft(x, axis=-1) * np.fft.fft(key), axis=-1))


@pytest.mark.parametrize("binding", ["hrr", "mbat", "none"])
def test_binding_layer_contract(binding):
    run_layer_contract(
        SuperpositionBinding,
        dict(capacity=4, binding=binding, regularization=0.1, seed=3),
        input_shape=(8, 5, 5, 6),
        call_kwargs=dict(superposition=4),
        expected_output_shape=(2, 5, 5, 6),
        expected_trainable_weights=0 if binding == "none" else 1,
        expected_losses=1 if binding == "hrr" else 0,
    )


def test_circulant_matrix_is_circular_convolution():
    rng = np.random.default_rng(0)
    key, x = rng.normal(size=7), rng.normal(size=(3, 7))
    matrix = key[circulant_indices(7)]
    np.testing.assert_allclose(x @ matrix, circular_convolution(x, key), atol=1e-12)


@pytest.mark.parametrize("superposition", [1, 2, 4])
def test_hrr_binding_is_sum_of_circular_convolutions_over_repeated_slots(superposition):
    layer = SuperpositionBinding(capacity=4, binding="hrr", seed=1)
    x = random_inputs((2 * superposition, 3, 3, 8))
    out = to_numpy(layer(x, superposition=superposition))
    keys = to_numpy(layer.keys)
    groups = x.reshape(2, superposition, 3, 3, 8)
    expected = sum(circular_convolution(groups[:, s % superposition], keys[s]) for s in range(4))
    assert_close(out, expected, rtol=1e-5)


@pytest.mark.parametrize("superposition", [1, 2])
def test_mbat_binding_applies_each_slot_matrix(superposition):
    layer = SuperpositionBinding(capacity=2, binding="mbat", seed=2)
    x = random_inputs((4, 2, 2, 5))
    out = to_numpy(layer(x, superposition=superposition))
    mats = to_numpy(layer.keys)
    groups = x.reshape(-1, superposition, 2, 2, 5)
    expected = sum(groups[:, s % superposition] @ mats[s] for s in range(2))
    assert_close(out, expected, rtol=1e-5)


def test_no_binding_sums_each_slot_once():
    x = random_inputs((4, 2, 2, 3))
    out = SuperpositionBinding(capacity=4, binding="none")(x, superposition=2)
    groups = x.reshape(2, 2, 2, 2, 3)
    assert_close(out, 2 * groups.sum(axis=1), rtol=1e-6)


@pytest.mark.parametrize("binding", ["hrr", "mbat", "none"])
@pytest.mark.parametrize("count", [5, 6, 7])
def test_binding_pads_the_last_group_with_its_own_inputs(binding, count):
    """A batch that is not a multiple of N binds as the divisible batch padded by cycling."""
    layer = SuperpositionBinding(capacity=4, binding=binding, seed=5)
    x = random_inputs((count, 3, 3, 4), seed=count)
    out = layer(x, superposition=4)
    assert tuple(out.shape) == (2, 3, 3, 4)
    assert_close(out, layer(pad_like_the_model(x, 4), superposition=4), rtol=1e-6)


def test_unbinding_head_cuts_back_to_the_original_batch():
    head = UnbindingHead(capacity=4)
    pooled = random_inputs((2, 6))
    full = to_numpy(head(pooled, superposition=4))
    assert full.shape == (8, 6)
    for count in (5, 8):
        cut = head(pooled, superposition=4, original_inputs=np.zeros((count, 3)))
        np.testing.assert_array_equal(to_numpy(cut), full[:count])
    pair = (np.zeros((7, 3)), np.zeros((7, 2)))  # a tuple of inputs: the first one's rows
    assert tuple(head(pooled, superposition=4, original_inputs=pair).shape) == (7, 6)


def test_binding_rejects_bad_arguments():
    with pytest.raises(ValueError, match="binding='fft' is unknown"):
        SuperpositionBinding(capacity=2, binding="fft")
    layer = SuperpositionBinding(capacity=4, binding="hrr")
    with pytest.raises(ValueError, match=r"one of \[1, 2, 4\]"):
        layer(random_inputs((6, 2, 2, 4)), superposition=3)


def test_binding_regularizer_matches_definition():
    keys = np.random.default_rng(4).normal(size=(4, 16)).astype("float32")
    norms = np.linalg.norm(keys, axis=1)
    unit = keys / norms[:, None]
    cos = unit @ unit.T
    pairs = [cos[i, j] ** 2 for i in range(4) for j in range(i + 1, 4)]
    expected = 0.1 * (np.mean(pairs) + np.mean((norms - 1) ** 2))
    np.testing.assert_allclose(float(BindingRegularizer(0.1)(keys)), expected, rtol=1e-5)
    orthonormal = np.eye(4, 16, dtype="float32")
    assert float(BindingRegularizer(0.1)(orthonormal)) == pytest.approx(0.0, abs=1e-7)


def _isometry_numpy(kernel, stride):
    """Direct numpy evaluation of 0.5 * ||conv(W, W, pad k-1, stride) - delta||^2.

    On the (out, in, kh, kw) operator.
    """
    w = np.transpose(kernel, (3, 2, 0, 1)).astype("float64")
    if w.shape[1] < w.shape[0]:
        w = np.transpose(w, (1, 0, 2, 3))
    rows, _, kh, kw = w.shape
    padded = np.pad(w, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    gh, gw = (padded.shape[2] - kh) // stride + 1, (padded.shape[3] - kw) // stride + 1
    gram = np.zeros((rows, rows, gh, gw))
    for a in range(gh):
        for b in range(gw):
            patch = padded[:, :, a * stride : a * stride + kh, b * stride : b * stride + kw]
            gram[:, :, a, b] = np.einsum("icxy,ocxy->io", patch, w)
    gram[:, :, gh // 2, gw // 2] -= np.eye(rows)
    return 0.5 * np.sum(gram**2)


@pytest.mark.parametrize(
    "shape,stride",
    [
        ((3, 3, 4, 6), 1),
        ((3, 3, 6, 4), 2),
        ((1, 1, 4, 8), 2),
        ((3, 3, 5, 5), 1),
        ((3, 3, 7, 7), 2),
        ((2, 2, 3, 5), 2),
        ((2, 3, 5, 3), 1),
        ((5, 5, 4, 4), 2),
    ],
)
@pytest.mark.parametrize(
    "all_pairs_limit", [0, 2**25], ids=["per-displacement", "as-the-class-picks"]
)
def test_isometry_regularizer_matches_definition(shape, stride, all_pairs_limit, monkeypatch):
    # Both ways of computing the Grams (chosen by kernel size and stride) must give the
    # definition's value.
    monkeypatch.setattr("keras_mimo.layers.regularizers._ALL_PAIRS_LIMIT", all_pairs_limit)
    kernel = np.random.default_rng(5).normal(scale=0.3, size=shape).astype("float32")
    value = float(IsometryRegularizer(1e-4, stride)(kernel))
    np.testing.assert_allclose(value, 1e-4 * _isometry_numpy(kernel, stride), rtol=1e-4)


def test_isometry_regularizer_vanishes_on_dirac_kernel():
    dirac = np.zeros((3, 3, 8, 8), dtype="float32")
    dirac[1, 1] = np.eye(8)
    assert float(IsometryRegularizer(1.0)(dirac)) == pytest.approx(0.0, abs=1e-10)


def test_isometry_regularizer_scale_multiplies_the_penalty_and_zero_leaves_it_out():
    kernel = np.random.default_rng(6).normal(scale=0.3, size=(3, 3, 4, 6)).astype("float32")
    regularizer = IsometryRegularizer(1e-2)
    full = float(regularizer(kernel))
    assert full > 1e-3
    regularizer.scale = 3.0
    np.testing.assert_allclose(float(regularizer(kernel)), 3.0 * full, rtol=1e-5)
    regularizer.scale = 0.0
    assert float(regularizer(kernel)) == 0.0
    assert regularizer.get_config() == {"weight": 1e-2, "strides": 1}, (
        "the scale is runtime state, not config"
    )


@pytest.mark.parametrize("activation", ["relu", "prelu", "srelu"])
def test_wide_block_contract_with_projection(activation):
    run_layer_contract(
        PreActWideBlock,
        dict(filters=6, strides=2, activation=activation, isometry_regularization=1e-4, seed=0),
        input_shape=(2, 8, 8, 4),
        expected_output_shape=(2, 4, 4, 6),
        expected_non_trainable_weights=6,
        expected_trainable_weights={"relu": 9, "prelu": 11, "srelu": 11}[activation],
        expected_losses=3,
    )


def test_wide_block_identity_shortcut_and_strided_padding():
    block = PreActWideBlock(filters=4, strides=1)
    block(random_inputs((1, 5, 5, 4)))
    assert not block.has_projection
    strided = PreActWideBlock(filters=4, strides=2)
    assert tuple(strided(random_inputs((1, 5, 5, 4))).shape) == (1, 3, 3, 4)
    assert strided.has_projection
    for size, out in (
        (2, 1),
        (1, 1),
    ):  # padded by one pixel per side, a strided block takes inputs down to 1x1
        tiny = PreActWideBlock(filters=4, strides=2)
        assert tuple(tiny(random_inputs((2, size, size, 4))).shape) == (2, out, out, 4)


def test_strided_block_pads_symmetrically_like_pytorch():
    """Output (0, 0) of a stride-2 conv with padding 1 is centred on input (0, 0).

    Keras "same" would centre it on (1, 1).
    """
    block = PreActWideBlock(filters=1, strides=2)
    block(random_inputs((1, 4, 4, 1)))
    kernel = np.zeros((3, 3, 1, 1), dtype="float32")
    kernel[1, 1] = 1.0  # conv1 copies the (activated) centre pixel
    block.conv1.kernel.assign(kernel)
    block.conv2.kernel.assign(kernel)
    block.shortcut_conv.kernel.assign(np.zeros((1, 1, 1, 1), dtype="float32"))
    x = np.zeros((1, 4, 4, 1), dtype="float32")
    x[0, 0, 0, 0] = 5.0
    out = to_numpy(block(x))
    bn = 1 / np.sqrt(1 + 1e-5)
    assert out[0, 0, 0, 0] == pytest.approx(5.0 * bn * bn, rel=1e-5)
    assert np.count_nonzero(out) == 1


@pytest.mark.parametrize("strides", [1, 2])
def test_inference_folds_batch_norm_into_convolutions_exactly(strides):
    block = PreActWideBlock(filters=6, strides=strides, activation="prelu")
    x = random_inputs((2, 6, 6, 4))
    block(x)
    rng = np.random.default_rng(9)
    for bn in (block.bn1, block.bn2, block.shortcut_bn):
        for variable in (bn.gamma, bn.beta, bn.moving_mean):
            variable.assign(rng.normal(size=variable.shape).astype("float32"))
        bn.moving_variance.assign(
            rng.uniform(0.5, 2.0, size=bn.moving_variance.shape).astype("float32")
        )
    out = block.act1(block.bn1(x, training=False))
    if strides > 1:
        out = keras.ops.pad(out, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = block.conv2(block.act2(block.bn2(block.conv1(out), training=False)))
    unfolded = out + block.shortcut_bn(block.shortcut_conv(x), training=False)
    assert_close(block(x, training=False), unfolded, rtol=1e-5)


def conv_and_batch_norm(kernel_size, strides, padding, in_channels, filters, seed):
    """A bias-free conv and a BN with random gamma and beta, built for 9x9 inputs."""
    conv = keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=keras.initializers.RandomNormal(seed=seed),
    )
    conv.build((None, 9, 9, in_channels))
    bn = batch_norm("bn")
    bn.build(conv.compute_output_shape((None, 9, 9, in_channels)))
    rng = np.random.default_rng(seed)
    bn.gamma.assign(rng.normal(size=filters).astype("float32"))
    bn.beta.assign(rng.normal(size=filters).astype("float32"))
    return conv, bn


@pytest.mark.parametrize(
    "kernel_size,strides,padding,in_channels",
    [(3, 1, "same", 1), (3, 1, "same", 3), (3, 2, "valid", 2), (1, 1, "same", 3)],
)
def test_stem_batch_statistics_from_input_patches_equal_batch_norm(
    kernel_size, strides, padding, in_channels
):
    # An offset mean and unequal channel scales, so both the mean and the covariance terms matter.
    images = (
        random_inputs((10, 9, 9, in_channels), seed=4) * np.linspace(0.5, 2.0, in_channels) + 1.5
    )
    folded_conv, folded_bn = conv_and_batch_norm(
        kernel_size, strides, padding, in_channels, 6, seed=5
    )
    plain_conv, plain_bn = conv_and_batch_norm(
        kernel_size, strides, padding, in_channels, 6, seed=5
    )
    folded = stem_conv_then_batch_norm(images, folded_conv, folded_bn, training=True)
    plain = plain_bn(plain_conv(images), training=True)
    assert_close(folded, plain, rtol=1e-5)
    # The moving statistics moved off their initial 0 and 1, and by the same amounts.
    assert not np.allclose(to_numpy(folded_bn.moving_mean), 0.0)
    assert not np.allclose(to_numpy(folded_bn.moving_variance), 1.0)
    assert_close(folded_bn.moving_mean, plain_bn.moving_mean, rtol=1e-5)
    assert_close(folded_bn.moving_variance, plain_bn.moving_variance, rtol=1e-5)
    # Inference uses the moving statistics, folded the same way as the body's convolutions.
    assert_close(
        stem_conv_then_batch_norm(images, folded_conv, folded_bn, training=False),
        plain_bn(plain_conv(images), training=False),
        rtol=1e-5,
    )


def test_shifted_relu():
    layer = ShiftedReLU(offset_init=-1.0)
    x = np.array([[-3.0, -1.0, 0.5]], dtype="float32")
    np.testing.assert_allclose(to_numpy(layer(x)), [[-1.0, -1.0, 0.5]])


@pytest.mark.parametrize("superposition", [1, 2, 4])
def test_unbinding_head_averages_slots_of_the_same_input(superposition):
    head, out = run_layer_contract(
        UnbindingHead,
        dict(capacity=4),
        input_shape=(3, 5),
        call_kwargs=dict(superposition=superposition),
        expected_output_shape=(3 * superposition, 5),
        expected_trainable_weights=2,
    )
    x = random_inputs((3, 5))
    kernel, bias = (to_numpy(w) for w in head.expand.weights)
    slots = np.maximum(x @ kernel + bias, 0).reshape(3, 4 // superposition, superposition, 5)
    assert_close(out, slots.mean(axis=1).reshape(-1, 5), rtol=1e-5)


def test_identity_unbinding_needs_capacity_one():
    with pytest.raises(ValueError, match="capacity 1"):
        UnbindingHead(capacity=2, identity=True)
