"""MIMOFormer / Performer models and the MIMO warm-up curriculum: shapes, grids, padding, training, saving."""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

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


def np_(x):
    return np.asarray(ops.convert_to_numpy(x))


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


GOLDEN_DIR = Path(__file__).resolve().parent / "data" / "reference_mimoformer"
GOLDEN_TOLERANCE = 1e-4  # max |ours - reference| / max |reference|


# --------------------------------------------------------------------------- the reference's whole model
def from_reference(data):
    """A MIMOFormer (pooling "mean", the reference's) holding the weights of a golden ``model_*`` file."""
    config = json.loads(str(data["config"]))
    ref = config["model"]
    attention = {"performer-256": "performer", "mimoformer": "att", "blockformer": "att+mlp"}[
        ref["attn_type"]
    ]
    model = MIMOFormer(
        vocab_size=ref["vocab_size"],
        max_length=ref["max_seq_len"],
        num_classes=ref["num_classes"],
        embedding_dim=ref["embedding_dim"],
        hidden_dim=ref["transformer_hidden_dim"],
        num_heads=ref["num_head"],
        head_dim=ref["head_dim"],
        num_layers=ref["num_layers"],
        attention=attention,
        capacity=tuple(config["capacity"]),
        num_random_features=ref["rp_dim"],
        dropout=ref["dropout_prob"],
        pooling="mean",
        seed=0,
    )

    def param(name):
        return data["param/" + name]

    def dense(layer, prefix):
        layer.kernel.assign(param(prefix + ".weight").T)
        layer.bias.assign(param(prefix + ".bias"))

    def norm(layer, prefix):
        layer.gamma.assign(param(prefix + ".weight"))
        layer.beta.assign(param(prefix + ".bias"))

    model.token_embedding.embeddings.assign(param("encoder/embeddings.word_embeddings.weight"))
    model.position_embedding.embeddings.assign(
        param("encoder/embeddings.position_embeddings.weight")
    )
    for i, block in enumerate(model.blocks):
        prefix = f"encoder/transformer_{i}."
        norm(block.norm1, prefix + "norm1")
        norm(block.norm2, prefix + "norm2")
        for ours, theirs in (
            ("query_dense", "W_q"),
            ("key_dense", "W_k"),
            ("value_dense", "W_v"),
            ("output_dense", "ff"),
        ):
            dense(getattr(block.attn, ours), prefix + "mha." + theirs)
        dense(block.mlp_hidden, prefix + "mlpblock.0")
        dense(block.mlp_output, prefix + "mlpblock.3")
        if attention == "performer":
            block.attn.core.projection.assign(param(prefix + "mha.attn.attn_fn.projection_matrix"))
            continue
        block.attn.core.projection.assign(param(prefix + "mha.attn.projection_matrix"))
        block.attn.core.keys.assign(
            param(prefix + "mha.attn.bindings").reshape(block.attn.core.keys.shape)
        )
        if attention == "att+mlp":
            block.stream_keys.assign(
                param(prefix + "mha.attn.bindings_embedding").reshape(block.stream_keys.shape)
            )
    norm(model.final_norm, "encoder/norm")
    dense(model.classifier_hidden, "head/mlpblock.0")
    dense(model.classifier, "head/mlpblock.2")
    return model


@pytest.mark.parametrize("case", ["model_performer", "model_att_2x2", "model_attmlp_2x2"])
def test_whole_model_matches_reference(case):
    data = np.load(GOLDEN_DIR / f"{case}.npz")
    model = from_reference(data)
    ids = data["token_ids"]
    np.testing.assert_array_equal(
        (ids != 0).astype("float32"), data["mask"]
    )  # same padding convention
    pooled = np_(model.encode(ids))
    error = np.abs(pooled - data["pooled"]).max() / np.abs(data["pooled"]).max()
    assert error < GOLDEN_TOLERANCE, error
    grids = sorted(k for k in data.files if k.startswith("logits_"))
    assert grids[-1] == "logits_%dx%d" % model.capacity
    for key in grids:
        model.grid = tuple(int(v) for v in key[len("logits_") :].split("x"))
        expected = data[key]
        error = np.abs(np_(model(ids)) - expected).max() / np.abs(expected).max()
        assert error < GOLDEN_TOLERANCE, (key, error)


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


@pytest.mark.parametrize("attention", ["att", "att+mlp"])
def test_output_shapes_and_padding_of_the_batch(attention):
    model = MIMOFormer(**TINY, attention=attention, capacity=(2, 2), seed=1)
    ids = tokens(7)
    out = np_(model(ids))
    assert out.shape == (7, 3) and np.isfinite(out).all()
    # the first four sequences form one whole superposition in both calls
    np.testing.assert_allclose(np_(model(ids[:4])), out[:4], rtol=1e-5, atol=1e-6)
    if attention == "att":
        # predict in batches of 4: the last batch of 3 is padded too; a row per sequence, in order
        np.testing.assert_allclose(
            np_(model.predict(ids, batch_size=4, verbose=0)), out, rtol=1e-5, atol=1e-6
        )


def test_dual_form():
    model = MIMOFormer(**TINY, capacity=(2, 1), dual=True, seed=2)
    a, b = tokens(8, seed=1), tokens(8, seed=2)
    out = np_(model((a, b)))
    assert out.shape == (8, 3)
    assert model.classifier_hidden.kernel.shape == (4 * TINY["embedding_dim"], TINY["hidden_dim"])
    x0, x1 = np_(model.encode(a)), np_(model.encode(b))
    features = np.concatenate([x0, x1, x0 * x1, x0 - x1], axis=-1)
    expected = np_(model.classifier(model.classifier_hidden(features)))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(np_(model((b, a))) - out).max() > 1e-4  # the head is not symmetric
    with pytest.raises(ValueError, match="pair"):
        model(a)


def test_pooling_modes():
    masked = MIMOFormer(**TINY, capacity=(2, 2), seed=3)
    reference = fresh_like(masked, pooling="mean")
    ids = tokens(8)
    counts = (ids != 0).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        np_(reference.encode(ids)),
        np_(masked.encode(ids)) * counts / ids.shape[1],
        rtol=1e-5,
        atol=1e-6,
    )


def test_one_by_one_grid_is_the_performer():
    """Same seed, same weights; key (0, 0) is all ones, so grid 1 x 1 is exactly FAVOR+ with the same projection."""
    performer = Performer(**TINY, seed=4)
    mimo = MIMOFormer(**TINY, capacity=(2, 2), grid=(1, 1), seed=4)
    ids = tokens(8)
    np.testing.assert_allclose(np_(mimo(ids)), np_(performer(ids)), rtol=1e-5, atol=1e-6)
    mimo.grid = (2, 2)
    assert np.abs(np_(mimo(ids)) - np_(performer(ids))).max() > 1e-4


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
    full = np_(model.predict(ids, verbose=0))
    for grid in grids:
        model.grid = grid
        expected = np_(fresh_like(model, grid=grid)(ids))
        got = np_(model.predict(ids, verbose=0))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        assert np.abs(got - full).max() > 1e-4
    model.grid = (2, 2)
    np.testing.assert_allclose(np_(model.predict(ids, verbose=0)), full, rtol=1e-5, atol=1e-6)
    assert model.get_config()["grid"] == (2, 2)


# --------------------------------------------------------------------------- training
def test_fit_a_few_steps():
    """Training steps of the fully superposed (att.+MLP) model; 'att' trains in the warm-up test below."""
    model = MIMOFormer(**{**TINY, "dropout": 0.1}, attention="att+mlp", capacity=(2, 2), seed=6)
    x = tokens(16, seed=1)
    y = np.random.default_rng(0).integers(0, 3, size=16)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **COMPILE,
    )
    before = [np_(w).copy() for w in model.trainable_weights]
    frozen = [np_(w).copy() for w in model.non_trainable_weights]
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 2 and np.isfinite(losses).all()
    after = [np_(w) for w in model.trainable_weights]
    assert all(
        np.abs(a - b).max() > 0 for a, b in zip(after, before)
    )  # every weight gets a gradient
    for old, new in zip(frozen, model.non_trainable_weights):  # projections and keys stay fixed
        np.testing.assert_array_equal(old, np_(new))


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
        expected[grid] = float(np_(loss_fn(y, model(ids))))
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
    before = [np_(w).copy() for w in model.trainable_weights]
    model.optimizer.learning_rate = 0.05
    history = model.fit(ids, y, batch_size=8, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert all(np.abs(np_(w) - b).max() > 0 for w, b in zip(model.trainable_weights, before))
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


def test_keras_save_load_is_bit_identical(tmp_path):
    # no seed: the projection and the keys are random, so only saving them can reproduce the outputs
    model = MIMOFormer(**TINY, attention="att+mlp", capacity=(2, 2), grid=(2, 1))
    ids = tokens(8)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model) and loaded.grid == model.grid
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np_(a), np_(b))
    np.testing.assert_array_equal(np_(loaded(ids)), np_(model(ids)))
    names = {w.path.split("/")[-1] for w in loaded.non_trainable_weights}
    assert {"projection", "keys", "stream_keys"} <= names
