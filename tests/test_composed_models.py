"""Models users compose from the public layers take any batch size, as the ready models do.

A Conv2D stem -> SuperpositionBinding -> PreActWideBlocks -> global pooling -> UnbindingHead
-> Dense, as a functional model (N fixed when the graph is built) and as a subclassed model
with the SwitchableSuperposition mixin (N switchable on the compiled model).
"""

import keras
import numpy as np
import pytest
from harness import pad_like_the_model, random_inputs, to_numpy

from keras_mimo.layers import PreActWideBlock, SuperpositionBinding, UnbindingHead
from keras_mimo.superposition import SwitchableSuperposition

CAPACITY, CLASSES, SHAPE = 4, 5, (8, 8, 3)
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
# XLA compilation of the TF training graph costs more than these few-step tests do.
COMPILE = {"jit_compile": False} if keras.backend.backend() == "tensorflow" else {}


def functional_model(superposition=CAPACITY, seed=0):
    images = keras.Input(SHAPE)
    x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False, name="stem")(images)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU()(x)
    x = SuperpositionBinding(CAPACITY, seed=seed, name="bind")(x, superposition=superposition)
    x = PreActWideBlock(16, seed=seed + 1)(x)
    x = PreActWideBlock(32, strides=2, seed=seed + 2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = UnbindingHead(CAPACITY, name="unbind")(
        x, superposition=superposition, original_inputs=images
    )
    return keras.Model(images, keras.layers.Dense(CLASSES, name="classifier")(x))


class ComposedMIMO(SwitchableSuperposition, keras.Model):
    """The same layers in a subclassed model whose N switches (the mixin's docstring example)."""

    def __init__(self, capacity=CAPACITY, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.capacity = capacity
        self.stem = keras.layers.Conv2D(16, 3, padding="same", activation="relu")
        self.bind = SuperpositionBinding(capacity, seed=seed)
        self.body = [PreActWideBlock(16, seed=seed + 1), PreActWideBlock(32, 2, seed=seed + 2)]
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.unbind = UnbindingHead(capacity)
        self.classifier = keras.layers.Dense(CLASSES)

    def call(self, images, training=None):
        n = self.superposition
        x = self.bind(self.stem(images), superposition=n)
        for block in self.body:
            x = block(x, training=training)
        x = self.unbind(self.pool(x), superposition=n, original_inputs=images)
        return self.classifier(x)


IMAGES = random_inputs((65,) + SHAPE, seed=1)
LABELS = np.arange(65) % CLASSES


def padded_reference(model, images, n):
    """Row i: image i's logits in a divisible batch, the last group filled with its own images."""
    return to_numpy(model(pad_like_the_model(images, n), training=False))[: len(images)]


def assert_rows_equal(got, expected, what):
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    for row, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=f"{what}: row {row}")


@pytest.mark.parametrize("count", [63, 65])
def test_functional_model_predicts_any_batch_size_in_order(count):
    model = functional_model()
    images = IMAGES[:count]
    reference = padded_reference(model, images, CAPACITY)
    # predict in batches of 32: the last one holds 31 (count 63) or 1 (count 65) images
    assert_rows_equal(model.predict(images, batch_size=32, verbose=0), reference, "predict")
    assert_rows_equal(to_numpy(model(images, training=False)), reference, "call")


def test_functional_model_fits_and_evaluates_a_batch_not_divisible_by_n(tmp_path):
    model = functional_model()
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=LOSS, **COMPILE)
    before = [to_numpy(w).copy() for w in model.trainable_weights]
    history = model.fit(IMAGES[:63], LABELS[:63], batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert all(np.any(to_numpy(w) != b) for w, b in zip(model.trainable_weights, before))
    assert np.isfinite(model.evaluate(IMAGES[:63], LABELS[:63], batch_size=16, verbose=0))
    # the unbinding's original_inputs, a tensor call argument, survives saving
    path = tmp_path / "composed.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        loaded.predict(IMAGES[:63], batch_size=32, verbose=0),
        model.predict(IMAGES[:63], batch_size=32, verbose=0),
    )


def test_unbinding_without_original_inputs_keeps_the_padding_rows():
    """Documented behaviour: the head cannot know the batch size unless it is told."""
    model = functional_model()
    head = model.get_layer("unbind")
    pooled = np.ones((16, 32), "float32")  # what 63 images at N = 4 pool to
    assert tuple(head(pooled, superposition=4).shape) == (64, 32)
    assert tuple(head(pooled, superposition=4, original_inputs=IMAGES[:63]).shape) == (63, 32)


def test_subclassed_model_switches_n_and_takes_any_batch_size():
    model = ComposedMIMO()
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=LOSS, **COMPILE)
    assert model.superposition == CAPACITY
    history = model.fit(IMAGES[:63], LABELS[:63], batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    outputs = {}
    for n in (4, 2, 1, 4):
        model.superposition = n
        outputs[n] = model.predict(IMAGES[:63], batch_size=32, verbose=0)
        assert_rows_equal(outputs[n], padded_reference(model, IMAGES[:63], n), f"N={n}")
    # the operating points differ, so a stale compiled function could not pass the checks
    assert np.abs(outputs[4] - outputs[1]).max() > 1e-3
    assert np.abs(outputs[4] - outputs[2]).max() > 1e-3
    with pytest.raises(ValueError, match=r"superposition=3 is not allowed .* \[1, 2, 4\]"):
        model.superposition = 3
    assert model.superposition == 4
