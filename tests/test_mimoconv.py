"""MIMOConv / WideResNet behaviour users rely on: switching N, padding, saving, config, training."""

import keras
import numpy as np
import pytest
from harness import assert_close, random_inputs, run_model_contract, to_numpy

from keras_mimo.models import MIMOConv, WideResNet

TINY = dict(depth=10, width=1, initial_width=1, num_classes=5, input_shape=(8, 8, 3), seed=7)


def tiny_model(**overrides):
    return MIMOConv(**{**TINY, "capacity": 4, **overrides})


def fresh_copy(model, superposition):
    """A newly built model with ``model``'s weights, running at ``superposition``."""
    clone = MIMOConv.from_config({**model.get_config(), "superposition": superposition})
    clone.set_weights(model.get_weights())
    return clone


def predict(model, x):
    return model.predict(x, batch_size=16, verbose=0)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(depth=12), "6k \\+ 4"),
        (dict(binding="fft"), "binding='fft' is unknown"),
        (dict(activation="gelu"), "activation='gelu' is unknown"),
        (dict(input_shape=(32, 32)), "input_shape=\\(32, 32\\) must be"),
        (dict(capacity=4, superposition=3), "one of \\[1, 2, 4\\]"),
        (dict(width=0), "width=0 must be a positive integer"),
        (dict(isometry_regularization=-1.0), "isometry_regularization=-1.0 must be a number >= 0"),
        (dict(stem_stride=3), "stem_stride=3 must be 1 .* or 2"),
        (dict(stem_stride=2.0), "stem_stride=2.0 must be 1 .* or 2"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MIMOConv(**{**TINY, **kwargs})


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(binding="mbat", activation="srelu", superposition=2, stem_stride=2),
    ],
    ids=["hrr-prelu", "mbat-srelu-stride2"],
)
def test_mimoconv_model_contract(tmp_path, overrides):
    """Config, fit step, save / load at every N, padded batches, mixed precision (harness)."""
    run_model_contract(
        MIMOConv, {**TINY, "capacity": 4, **overrides}, random_inputs((8, 8, 8, 3)), tmp_path
    )


def test_wide_resnet_model_contract(tmp_path):
    init = dict(depth=10, width=1, num_classes=3, input_shape=(8, 8, 3), seed=3)
    run_model_contract(WideResNet, init, random_inputs((8, 8, 8, 3)), tmp_path)


def test_superposition_rejects_non_divisors():
    model = tiny_model()
    with pytest.raises(
        ValueError,
        match=r"superposition=3 is not allowed for a model of capacity 4: .* one of \[1, 2, 4\]",
    ):
        model.superposition = 3
    assert model.superposition == 4


# XLA on TensorFlow, jit on JAX ("auto" is jit there already); torch.compile takes minutes, so
# it is a large test.
JIT_MODES = {
    "tensorflow": ["auto", True],
    "jax": ["auto"],
    "torch": ["auto", pytest.param(True, marks=pytest.mark.large)],
}


@pytest.mark.parametrize("jit_compile", JIT_MODES[keras.backend.backend()])
def test_switching_superposition_on_a_compiled_model_takes_effect(jit_compile):
    model = tiny_model()
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit_compile
    )
    x = random_inputs((16, 8, 8, 3))
    y = np.arange(16) % 5
    outputs = {4: predict(model, x)}
    for n in (1, 2, 4):
        model.superposition = n
        outputs[n] = predict(model, x)
        fresh = fresh_copy(model, n)
        assert_close(outputs[n], fresh(x, training=False), rtol=1e-5)
        loss = model.evaluate(x, y, batch_size=16, verbose=0)
        fresh.compile(
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False
        )
        assert loss == pytest.approx(fresh.evaluate(x, y, batch_size=16, verbose=0), rel=1e-5)
    # The operating points really differ, so a stale traced function could not pass the checks
    # above.
    assert np.max(np.abs(outputs[1] - outputs[4])) > 1e-3
    assert np.max(np.abs(outputs[2] - outputs[4])) > 1e-3


def test_training_after_switching_uses_the_new_superposition():
    model = tiny_model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = random_inputs((8, 8, 8, 3)), np.arange(8) % 5
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.superposition = 1
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    fresh = fresh_copy(model, 1)
    fresh.compile(
        optimizer=keras.optimizers.SGD(0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    expected = fresh.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert history.history["loss"][0] == pytest.approx(expected.history["loss"][0], rel=1e-4)


class SwitchEveryBatch(keras.callbacks.Callback):
    """Cycles N through a schedule at every training batch and records the N each batch ran at."""

    def __init__(self, schedule):
        super().__init__()
        self.schedule, self.used = schedule, []

    def on_train_batch_begin(self, batch, logs=None):
        self.model.superposition = self.schedule[len(self.used) % len(self.schedule)]
        self.used.append(self.model.superposition)


def test_superposition_can_switch_at_every_batch_inside_fit():
    model = tiny_model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = random_inputs((24, 8, 8, 3)), np.arange(24) % 5
    switcher = SwitchEveryBatch([4, 1, 4, 2])
    history = model.fit(
        x, y, batch_size=4, epochs=1, verbose=0, callbacks=[switcher], shuffle=False
    )
    assert switcher.used == [4, 1, 4, 2, 4, 1]
    # With a zero learning rate each batch's training loss is that of a fresh model at the N it
    # ran at.
    # The training loss is the forward pass's (batch statistics, regularisers included), so one
    # eager training-mode call per batch tells it without a training step.
    fresh = {n: fresh_copy(model, n) for n in set(switcher.used)}
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    per_batch = []
    for index, n in enumerate(switcher.used):
        rows = slice(4 * index, 4 * index + 4)
        logits = fresh[n](x[rows], training=True)
        penalty = sum(float(to_numpy(loss)) for loss in fresh[n].losses)
        per_batch.append(float(to_numpy(loss_fn(y[rows], logits))) + penalty)
    assert history.history["loss"][0] == pytest.approx(np.mean(per_batch), rel=1e-4)


def test_seed_makes_keys_and_weights_repeatable():
    a, b, c = tiny_model(seed=11), tiny_model(seed=11), tiny_model(seed=12)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(to_numpy(a.bind.keys), to_numpy(c.bind.keys))


def test_regularisers_are_model_losses_and_switch_off():
    model = tiny_model()
    # one binding term + conv1 and conv2 of three blocks + the projection shortcuts of stages 2
    # and 3
    # (stage 1 keeps 16 channels at stride 1, so its shortcut is the identity)
    assert len(model.losses) == 1 + 2 * 3 + 2
    assert all(float(to_numpy(loss)) > 0 for loss in model.losses)
    assert len(tiny_model(binding_regularization=0.0, isometry_regularization=0.0).losses) == 0
    assert len(tiny_model(binding="mbat").losses) == 8
    assert len(WideResNet(depth=10, width=1, input_shape=(8, 8, 3)).losses) == 0


def test_frozen_keys_are_not_trainable():
    frozen = tiny_model(trainable_keys=False)
    assert all("keys" not in v.path for v in frozen.trainable_weights)
    assert any("keys" in v.path for v in frozen.non_trainable_weights)


@pytest.mark.parametrize("stem_stride", [1, 2])
def test_stem_trains_exactly_like_a_plain_batch_norm(monkeypatch, stem_stride):
    """The stem's BN, folded with statistics from the input patches, takes the same SGD step.

    The same as ``bn(conv(x))``'s.
    """
    from keras_mimo.models.mimoconv import mimoconv

    x, y = random_inputs((12, 8, 8, 3), seed=2) + 0.5, np.arange(12) % 5

    def one_step():
        model = tiny_model(superposition=2, seed=11, stem_stride=stem_stride)
        model.compile(
            optimizer=keras.optimizers.SGD(0.5),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        before = [to_numpy(v).copy() for v in model.weights]
        loss = model.train_on_batch(x, y)
        return loss, before, model

    folded_loss, before, folded = one_step()
    monkeypatch.setattr(
        mimoconv,
        "stem_conv_then_batch_norm",
        lambda images, conv, bn, training: bn(conv(images), training=training),
    )
    plain_loss, _, plain = one_step()
    assert folded_loss == pytest.approx(plain_loss, rel=1e-5)
    for initial, ours, theirs in zip(before, folded.weights, plain.weights):
        assert ours.path.split("/", 1)[-1] == theirs.path.split("/", 1)[-1]
        if "stem" in ours.path:  # kernel, gamma, beta and the moving statistics all moved
            assert not np.allclose(to_numpy(ours), initial), f"{ours.path} did not change"
        # A floor on the scale: a few weights are near 0, where the two differ only by rounding.
        assert_close(
            ours,
            theirs,
            rtol=1e-4,
            scale=max(float(np.max(np.abs(to_numpy(theirs)))), 1e-3),
        )


def test_a_strided_stem_pads_one_pixel_per_side_and_halves_the_superposition(monkeypatch):
    """``stem_stride=2``: conv with PyTorch's padding=1, then BN and ReLU, at half resolution.

    Not Keras' asymmetric "same" padding.
    """
    model = tiny_model(stem_stride=2, superposition=1, input_shape=(8, 8, 1))
    x = random_inputs((3, 8, 8, 1), seed=4)
    seen = {}
    bind = model.bind.call
    monkeypatch.setattr(
        model.bind,
        "call",
        lambda inputs, superposition=None: bind(seen.setdefault("stem", inputs), superposition),
    )
    logits = model(x, training=False)
    assert tuple(logits.shape) == (3, 5)

    kernel = to_numpy(model.stem_conv.kernel)  # (3, 3, 1, 16)
    padded = np.pad(to_numpy(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
    conv = np.zeros((3, 4, 4, kernel.shape[-1]), "float32")
    for i in range(4):
        for j in range(4):
            conv[:, i, j] = np.einsum(
                "bhwc,hwco->bo", padded[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3], kernel
            )
    bn = model.stem_bn
    mean, variance, gamma, beta = (
        to_numpy(v) for v in (bn.moving_mean, bn.moving_variance, bn.gamma, bn.beta)
    )
    expected = np.maximum((conv - mean) / np.sqrt(variance + bn.epsilon) * gamma + beta, 0.0)
    assert tuple(seen["stem"].shape) == (3, 4, 4, 16)
    assert_close(seen["stem"], expected, rtol=1e-5)
    # One column of zero padding on the left: a Keras "same" conv would differ at the first row
    # and column.
    same = to_numpy(keras.ops.conv(x, kernel, strides=2, padding="same"))
    assert not np.allclose(same, conv, atol=1e-4)

    wide = WideResNet(depth=10, width=1, num_classes=3, input_shape=(9, 9, 1), stem_stride=2)
    assert tuple(wide(random_inputs((2, 9, 9, 1)), training=False).shape) == (2, 3)


def test_saved_mixed_precision_training_state_loads_as_it_was_saved(tmp_path):
    from keras_mimo.training import FilteredSGD, one_cycle

    model = tiny_model(dtype="mixed_bfloat16")
    assert {
        layer.dtype_policy.name
        for layer in model._flatten_layers()
        if layer is not model.classifier
    } == {"mixed_bfloat16"}
    assert model.classifier.dtype_policy.name == "float32"
    lr, momentum = one_cycle(0.05, 10)
    model.compile(
        optimizer=FilteredSGD(lr, momentum=momentum),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = random_inputs((8, 8, 8, 3)), np.arange(8) % 5
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    assert keras.config.dtype_policy().name == "float32"
    loaded = keras.saving.load_model(path)  # under the float32 global policy
    assert [layer.dtype_policy.name for layer in loaded._flatten_layers()] == [
        layer.dtype_policy.name for layer in model._flatten_layers()
    ]
    assert keras.config.dtype_policy().name == "float32"
    assert loaded.compiled and isinstance(loaded.optimizer, FilteredSGD)
    assert int(loaded.optimizer.iterations) == 2
    for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    np.testing.assert_array_equal(predict(loaded, x), predict(model, x))


def test_images_of_the_wrong_shape_are_rejected():
    with pytest.raises(
        ValueError, match=r"expects a batch of images of shape \(batch,\) \+ \(8, 8, 3\)"
    ):
        tiny_model()(random_inputs((4, 9, 9, 3)))


def test_wide_resnet_is_the_plain_baseline():
    model = WideResNet(depth=10, width=1, num_classes=5, input_shape=(8, 8, 3))
    assert model.capacity == 1 and model.unbind.expand is None and model.activation == "relu"
    with pytest.raises(ValueError, match="WideResNet does not take capacity"):
        WideResNet(capacity=4)


def expected_wrn_parameters(depth, width, num_classes, stem=16, channels=3):
    """Counted by hand: stem conv + BN, blocks, classifier.

    Per block BN-conv3x3-BN-conv3x3 (+ 1x1 conv + BN shortcut).

    BN counts 4 numbers per channel (gamma, beta, moving mean, moving variance).
    """
    total = 9 * channels * stem + 4 * stem
    inputs = stem
    for filters in (16 * width, 32 * width, 64 * width):
        for index in range((depth - 4) // 6):
            total += 4 * inputs + 9 * inputs * filters + 4 * filters + 9 * filters * filters
            if index == 0 and (inputs != filters or filters != 16 * width):
                total += inputs * filters + 4 * filters
            inputs = filters
    return total + inputs * num_classes + num_classes


def test_wrn_28_10_has_the_published_parameter_count():
    """Zagoruyko & Komodakis report 36.5M parameters for WRN-28-10 on CIFAR-10."""
    model = WideResNet(depth=28, width=10, num_classes=10, input_shape=(32, 32, 3))
    assert model.count_params() == expected_wrn_parameters(28, 10, 10)
    assert round(model.count_params() / 1e6, 1) == 36.5
