"""MIMOFormer / Performer models and the MIMO warm-up curriculum.

Shapes, grids, padding, training and saving; the agreement with the reference PyTorch model is
in test_convert.py (its converter is keras_mimo.convert.from_mimoformer_reference).
"""

import keras
import numpy as np
import pytest
from harness import run_model_contract, to_numpy

from keras_mimo.models.mimoformer import MIMOFormer, MIMOWarmup, Performer

# The sizes of the whole-model golden files, so that JAX compiles each eager op for few shapes.
TINY = dict(
    vocab_size=12,
    max_length=16,
    num_classes=3,
    embedding_dim=12,
    hidden_dim=24,
    num_heads=2,
    head_dim=8,
    num_layers=1,
    num_random_features=16,
    dropout=0.0,
)


# XLA compilation of the TF training graph costs more than these few-step tests do; the
# tf.function graph without XLA bakes the grid in just the same.
COMPILE = {"jit_compile": False} if keras.backend.backend() == "tensorflow" else {}


def tokens(batch, length=16, seed=0):
    """Random token ids 1..11 with padding (id 0) at the end of most sequences."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, TINY["vocab_size"], size=(batch, length)).astype("int32")
    lengths = rng.integers(4, length + 1, size=batch)
    lengths[0] = length
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids


def fresh_like(model, **changes):
    config = model.get_config()
    config.update(changes)
    clone = type(model).from_config(config)
    clone.set_weights(model.get_weights())
    return clone


# --------------------------------------------------------------------------- construction
def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="capacity"):
        MIMOFormer(**TINY, capacity=(2, 2), grid=(4, 1))
    with pytest.raises(ValueError, match="pair"):
        MIMOFormer(**TINY, capacity=(2, 0))
    with pytest.raises(ValueError, match="performer"):
        MIMOFormer(**TINY, attention="performer", capacity=(2, 2))
    with pytest.raises(ValueError, match="attention"):
        MIMOFormer(**TINY, attention="softmax")
    with pytest.raises(ValueError, match="pooling"):
        MIMOFormer(**TINY, pooling="cls")
    with pytest.raises(ValueError, match="vocab_size"):
        MIMOFormer(**{**TINY, "vocab_size": 1})
    with pytest.raises(ValueError, match="Performer does not take"):
        Performer(**TINY, capacity=(2, 2))
    model = MIMOFormer(**TINY, capacity=(2, 2), seed=0)
    for bad in [(3, 1), (0, 1), (2,), 4, "2x2"]:
        with pytest.raises(ValueError):
            model.grid = bad
    assert model.grid == (2, 2)
    with pytest.raises(ValueError, match="max_length"):
        model(np.ones((4, 20), "int32"))
    with pytest.raises(ValueError, match="dual=True"):
        model((tokens(8), tokens(8)))


@pytest.mark.parametrize(
    "cls, init, grids",
    [
        (MIMOFormer, dict(attention="att", capacity=(2, 2)), [(1, 1), (2, 1), (2, 2)]),
        (MIMOFormer, dict(attention="att+mlp", capacity=(2, 2), dropout=0.1), [(1, 2), (2, 2)]),
        (Performer, dict(), [(1, 1)]),
    ],
    ids=["att", "att+mlp", "performer"],
)
def test_model_contract(tmp_path, cls, init, grids):
    """Config, fit step, save / load at every grid, padded batches, mixed precision (harness);
    the fit step trains every weight but the FAVOR+ projections and the keys."""
    result = run_model_contract(
        cls, {**TINY, **init}, tokens(8), tmp_path, superpositions=grids, attribute="grid"
    )
    model = result.model
    fixed = [i for i, w in enumerate(model.weights) if not w.trainable]
    names = {model.weights[i].path.split("/")[-1] for i in fixed}
    expected = {"att": {"projection", "keys"}, "att+mlp": {"projection", "keys", "stream_keys"}}
    assert names == expected.get(init.get("attention"), {"projection"})
    for i in fixed:
        np.testing.assert_array_equal(result.weights_after_fit[i], result.weights_before_fit[i])


def test_dual_form():
    model = MIMOFormer(**TINY, capacity=(2, 1), dual=True, seed=2)
    a, b = tokens(8, seed=1), tokens(8, seed=2)
    out = to_numpy(model((a, b)))
    assert out.shape == (8, 3)
    assert model.classifier_hidden.kernel.shape == (4 * TINY["embedding_dim"], TINY["hidden_dim"])
    x0, x1 = to_numpy(model.encode(a)), to_numpy(model.encode(b))
    features = np.concatenate([x0, x1, x0 * x1, x0 - x1], axis=-1)
    expected = to_numpy(model.classifier(model.classifier_hidden(features)))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(to_numpy(model((b, a))) - out).max() > 1e-4  # the head is not symmetric
    with pytest.raises(ValueError, match="pair"):
        model(a)


def test_pooling_modes():
    masked = MIMOFormer(**TINY, capacity=(2, 2), seed=3)
    reference = fresh_like(masked, pooling="mean")
    ids = tokens(8)
    counts = (ids != 0).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        to_numpy(reference.encode(ids)),
        to_numpy(masked.encode(ids)) * counts / ids.shape[1],
        rtol=1e-5,
        atol=1e-6,
    )


def test_one_by_one_grid_is_the_performer():
    """Same seed, same weights; key (0, 0) is all ones.

    So grid 1 x 1 is exactly FAVOR+ with the same projection.
    """
    performer = Performer(**TINY, seed=4)
    mimo = MIMOFormer(**TINY, capacity=(2, 2), grid=(1, 1), seed=4)
    ids = tokens(8)
    np.testing.assert_allclose(to_numpy(mimo(ids)), to_numpy(performer(ids)), rtol=1e-5, atol=1e-6)
    mimo.grid = (2, 2)
    assert np.abs(to_numpy(mimo(ids)) - to_numpy(performer(ids))).max() > 1e-4


# --------------------------------------------------------------------------- grid switching
@pytest.mark.parametrize("attention, grids", [("att", [(2, 1), (1, 1)]), ("att+mlp", [(1, 2)])])
def test_grid_switch_on_compiled_model_takes_effect(attention, grids):
    model = MIMOFormer(**TINY, attention=attention, capacity=(2, 2), seed=5)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **COMPILE,
    )
    ids = tokens(8)
    full = to_numpy(model.predict(ids, verbose=0))
    for grid in grids:
        model.grid = grid
        expected = to_numpy(fresh_like(model, grid=grid)(ids))
        got = to_numpy(model.predict(ids, verbose=0))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        assert np.abs(got - full).max() > 1e-4
    model.grid = (2, 2)
    np.testing.assert_allclose(to_numpy(model.predict(ids, verbose=0)), full, rtol=1e-5, atol=1e-6)
    assert model.get_config()["grid"] == (2, 2)


# --------------------------------------------------------------------------- training
class LossPerStep(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses, self.grids = [], []

    def on_train_batch_begin(self, batch, logs=None):
        self.grids.append(tuple(self.model.grid))

    def on_epoch_end(self, epoch, logs=None):
        self.losses.append(float(logs["loss"]))


def test_mimo_warmup_switches_compiled_training_steps():
    model = MIMOFormer(**TINY, capacity=(2, 2), seed=7)
    ids = tokens(8)
    y = np.arange(8) % 3
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    # learning rate 0: every step sees the same weights, so a step's loss tells which grid it ran at
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss_fn, **COMPILE)
    expected = {}
    for grid in [(1, 1), (2, 2)]:
        model.grid = grid
        expected[grid] = float(to_numpy(loss_fn(y, model(ids))))
    model.grid = (2, 2)
    assert abs(expected[(1, 1)] - expected[(2, 2)]) > 1e-3
    warmup, record = MIMOWarmup(2), LossPerStep()
    model.fit(ids, y, batch_size=8, epochs=5, shuffle=False, verbose=0, callbacks=[warmup, record])
    used = []
    for loss in record.losses:
        matches = [
            g for g, value in expected.items() if abs(loss - value) < 1e-4 * max(1.0, abs(value))
        ]
        assert len(matches) == 1, (loss, expected)
        used.append(matches[0])
    assert used == [(1, 1), (1, 1), (2, 2), (2, 2), (2, 2)]
    assert record.grids == used
    assert warmup.steps_done == 5 and model.grid == (2, 2)
    # the same compiled steps train once the learning rate is up
    before = [to_numpy(w).copy() for w in model.trainable_weights]
    model.optimizer.learning_rate = 0.05
    history = model.fit(ids, y, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert all(np.abs(to_numpy(w) - b).max() > 0 for w, b in zip(model.trainable_weights, before))
    assert MIMOWarmup.warmup_grid((4, 4)) == (2, 2) and MIMOWarmup.warmup_grid((1, 3)) == (1, 1)
    with pytest.raises(ValueError, match="warmup_steps"):
        MIMOWarmup(-1)


# --------------------------------------------------------------------------- saving
def test_config_round_trip():
    model = MIMOFormer(
        **TINY, attention="att+mlp", capacity=(3, 2), grid=(1, 2), pooling="mean", dual=True, seed=8
    )
    config = model.get_config()
    assert {"capacity", "grid", "attention", "seed", "dual", "pooling"} <= set(config)
    restored = MIMOFormer.from_config(config)
    assert restored.get_config() == config and restored.grid == (1, 2)
    performer_config = Performer(**TINY, seed=8).get_config()
    assert "attention" not in performer_config and "grid" not in performer_config
    assert Performer.from_config(performer_config).get_config() == performer_config
