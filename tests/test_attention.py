"""FAVOR+ attention, superposed attention ('att.', 'att.+MLP') and the MIMOFormer block.

Contracts and golden agreement with the reference's attention modules.
"""

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from harness import to_numpy

from keras_mimo.layers.attention import (
    FAVORAttention,
    MultiHeadFAVORAttention,
    SuperposedFAVORAttention,
    bipolar_keys,
    check_grid,
    gaussian_orthogonal_random_matrix,
)
from keras_mimo.layers.transformer import MIMOFormerBlock, retrieve_stream, superpose_stream

GOLDEN_DIR = Path(__file__).resolve().parent / "data" / "reference_mimoformer"
GOLDEN_TOLERANCE = 1e-4  # max |ours - reference| / max |reference|


def heads(batch=8, length=16, num_heads=2, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal((batch, length, num_heads, dim)).astype("float32") for _ in range(3)
    ]


def padding_mask(lengths, length=16):
    return (np.arange(length)[None, :] < np.asarray(lengths)[:, None]).astype("float32")


LENGTHS = [16, 9, 12, 4, 16, 7, 16, 11]


# --------------------------------------------------------------------------- golden agreement
def golden_cases():
    return sorted(p.stem for p in GOLDEN_DIR.glob("*.npz") if not p.stem.startswith("model_"))


def test_golden_files_are_there_and_small():
    assert golden_cases() == [
        "blockformer_2x2",
        "blockformer_3x2",
        "mimoformer_2x2",
        "mimoformer_4x2",
        "performer",
    ]
    # whole-model cases, in test_convert.py
    assert len(list(GOLDEN_DIR.glob("model_*.npz"))) == 3
    for path in GOLDEN_DIR.glob("*.npz"):
        assert path.stat().st_size < 200_000


def to_ours(x):
    """Reference layout (batch, heads, length, dim) -> ours (batch, length, heads, dim)."""
    return np.transpose(x, (0, 2, 1, 3))


def relative_error(ours, reference):
    return float(np.abs(to_numpy(ours) - reference).max() / np.abs(reference).max())


@pytest.mark.parametrize("case", golden_cases())
def test_attention_matches_reference(case):
    data = np.load(GOLDEN_DIR / f"{case}.npz")
    config = json.loads(str(data["config"]))
    q, k, v = (to_ours(data[name]) for name in ("query", "key", "value"))
    mask = data["mask"]
    assert mask.min() == 0 and mask.max() == 1  # the cases do exercise padding
    if config["module"] == "PerformerAttention":
        layer = FAVORAttention(config["rp_dim"])
        layer.build(q.shape)
        layer.projection.assign(data["projection"])
        error = relative_error(layer(q, k, v, padding_mask=mask), to_ours(data["output_1x1"]))
        assert error < GOLDEN_TOLERANCE, error
        return
    bundled = config["module"] == "BlockformerAttention"
    layer = SuperposedFAVORAttention(
        tuple(config["capacity"]), config["rp_dim"], bundled_output=bundled
    )
    layer.build(q.shape)
    layer.projection.assign(data["projection"])
    layer.keys.assign(data["keys"])
    for grid in config["grids"]:
        expected = to_ours(data["output_%dx%d" % tuple(grid)])
        out = layer(q, k, v, padding_mask=mask, grid=tuple(grid))
        assert tuple(out.shape) == expected.shape
        error = relative_error(out, expected)
        assert error < GOLDEN_TOLERANCE, (grid, error)
    if bundled:
        grid = tuple(config["capacity"])
        superposed = superpose_stream(data["stream"], data["stream_keys"], grid)
        assert relative_error(superposed, data["superposed_stream"]) < GOLDEN_TOLERANCE
        retrieved = retrieve_stream(data["bundles"], data["stream_keys"], grid)
        assert relative_error(retrieved, data["retrieved"]) < GOLDEN_TOLERANCE


# --------------------------------------------------------------------------- random quantities
def test_projection_is_seeded_block_orthogonal():
    p = gaussian_orthogonal_random_matrix(20, 8, seed=3)
    assert p.shape == (20, 8) and p.dtype == np.float32
    np.testing.assert_array_equal(p, gaussian_orthogonal_random_matrix(20, 8, seed=3))
    assert not np.array_equal(p, gaussian_orthogonal_random_matrix(20, 8, seed=4))
    for block in (p[:8], p[8:16], p[16:]):
        gram = block @ block.T
        np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-4)
    # rows carry chi-distributed norms (not unit norms)
    assert np.std(np.linalg.norm(p, axis=1)) > 0.05


def test_bipolar_keys():
    keys = bipolar_keys((3, 2, 64), seed=1)
    assert set(np.unique(keys)) == {-1.0, 1.0}
    np.testing.assert_array_equal(keys[0, 0], np.ones(64))
    assert not np.array_equal(keys[0, 1], keys[1, 0])
    np.testing.assert_array_equal(keys, bipolar_keys((3, 2, 64), seed=1))


@pytest.mark.parametrize("grid", [(0, 1), (1, -2), (2,), "2x2", (True, 1), (1.0, 2), None])
def test_check_grid_rejects(grid):
    with pytest.raises(ValueError, match="pair"):
        check_grid(grid)


def test_check_grid_capacity():
    assert check_grid([2, 1], (2, 2)) == (2, 1)
    with pytest.raises(ValueError, match="capacity"):
        check_grid((3, 1), (2, 2))


# --------------------------------------------------------------------------- layer contracts
def test_favor_shapes_and_normalisation():
    q, k, v = heads()
    layer = FAVORAttention(16, seed=1)
    out = to_numpy(layer(q, k, v))
    assert out.shape == q.shape
    # the output is a convex combination of values: constant values come out unchanged
    const = np.ones_like(v) * 2.5
    np.testing.assert_allclose(to_numpy(layer(q, k, const)), 2.5, rtol=1e-5)


def test_superposed_shapes():
    q, k, v = heads(batch=12)
    att = SuperposedFAVORAttention((3, 2), 16, seed=1)
    assert tuple(att(q, k, v).shape) == (12, 16, 2, 8)
    assert tuple(att(q, k, v, grid=(2, 1)).shape) == (12, 16, 2, 8)
    bundled = SuperposedFAVORAttention((3, 2), 16, bundled_output=True, seed=1)
    assert tuple(bundled(q, k, v).shape) == (4, 16, 2, 8)
    assert tuple(bundled(q, k, v, grid=(2, 2)).shape) == (6, 16, 2, 8)
    with pytest.raises(ValueError, match="capacity"):
        att(q, k, v, grid=(4, 1))
    with pytest.raises(ValueError, match="multiple of M \\* N"):
        att(q[:10], k[:10], v[:10])


def test_grid_one_by_one_is_plain_favor():
    q, k, v = heads()
    mask = padding_mask(LENGTHS)
    favor = FAVORAttention(16, seed=5)
    mimo = SuperposedFAVORAttention((2, 2), 16, seed=9)
    mimo.build(q.shape)
    favor.build(q.shape)
    mimo.projection.assign(favor.projection)
    plain = to_numpy(favor(q, k, v, padding_mask=mask))
    np.testing.assert_allclose(
        to_numpy(mimo(q, k, v, padding_mask=mask, grid=(1, 1))), plain, rtol=1e-5, atol=1e-6
    )
    # ... and in superposition it is not
    assert np.abs(to_numpy(mimo(q, k, v, padding_mask=mask)) - plain).max() > 1e-2


@pytest.mark.parametrize("kind", ["favor", "att", "att+mlp"])
def test_padding_content_does_not_leak(kind):
    q, k, v = heads()
    mask = padding_mask(LENGTHS)
    layer = {
        "favor": FAVORAttention(16, seed=2),
        "att": SuperposedFAVORAttention((2, 2), 16, seed=2),
        "att+mlp": SuperposedFAVORAttention((2, 2), 16, bundled_output=True, seed=2),
    }[kind]
    rng = np.random.default_rng(7)
    padded = (1.0 - mask)[:, :, None, None]
    noise = [rng.standard_normal(q.shape).astype("float32") * 10 * padded for _ in range(3)]
    if kind != "favor":
        # As in the reference, queries are not masked: a query bundle sums the queries of all M
        # grid rows at a position, padded or not. Keys and values are masked.
        noise[0] *= 0.0
    base = to_numpy(layer(q, k, v, padding_mask=mask))
    moved = to_numpy(layer(q + noise[0], k + noise[1], v + noise[2], padding_mask=mask))
    if kind == "favor":
        real = mask.astype(bool)
        np.testing.assert_allclose(moved[real], base[real], rtol=1e-5, atol=1e-5)
        assert (
            np.abs(moved[~real] - base[~real]).max() > 1e-3
        )  # a padded query still gets its own output
    else:
        np.testing.assert_allclose(moved, base, rtol=1e-5, atol=1e-5)
    # the same change outside the padding does move the outputs
    inside = [
        rng.standard_normal(q.shape).astype("float32") * mask[:, :, None, None] for _ in range(3)
    ]
    changed = to_numpy(layer(q, k + inside[1], v + inside[2], padding_mask=mask))
    assert np.abs(changed - base).max() > 1e-3


def test_superposed_order_follows_the_batch():
    """Input b' * M * N + m * N + n is cell (m, n).

    Permuting whole superpositions permutes the outputs alike.
    """
    q, k, v = heads(batch=8)
    layer = SuperposedFAVORAttention((2, 2), 16, seed=4)
    out = to_numpy(layer(q, k, v))
    order = np.r_[4:8, 0:4]
    np.testing.assert_allclose(
        to_numpy(layer(q[order], k[order], v[order])), out[order], rtol=1e-5, atol=1e-6
    )
    # swapping two inputs inside a superposition is not a symmetry (they sit at different keys)
    swap = np.r_[1, 0, 2:8]
    assert np.abs(to_numpy(layer(q[swap], k[swap], v[swap])) - out[swap]).max() > 1e-3


def test_stream_superpose_then_retrieve():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5, 6)).astype("float32")
    keys = bipolar_keys((2, 2, 6), seed=3)
    bundles = to_numpy(superpose_stream(x, keys, (2, 2)))
    assert bundles.shape == (4, 5, 6)
    groups = x.reshape(2, 2, 2, 5, 6)
    np.testing.assert_allclose(
        bundles.reshape(2, 2, 5, 6), (groups * keys[None, :, :, None]).sum(1), rtol=1e-6
    )
    items = to_numpy(retrieve_stream(bundles, keys, (2, 2)))
    assert items.shape == (8, 5, 6)
    # with M = 1 binding is undone exactly (keys are +-1)
    np.testing.assert_allclose(
        to_numpy(retrieve_stream(superpose_stream(x, keys, (1, 2)), keys, (1, 2))), x, rtol=1e-6
    )


@pytest.mark.parametrize("attention", ["performer", "att", "att+mlp"])
def test_multi_head_and_block_shapes(attention):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 16, 12)).astype("float32")
    mask = padding_mask(LENGTHS)
    mha = MultiHeadFAVORAttention(
        2, 8, attention=attention, capacity=(2, 2), num_random_features=16, seed=1
    )
    rows = 4 if attention == "att+mlp" else 8
    assert tuple(mha(x, padding_mask=mask).shape) == (rows, 16, 12)
    block = MIMOFormerBlock(
        2, 8, 24, attention=attention, capacity=(2, 2), num_random_features=16, dropout=0.0, seed=1
    )
    grid = (1, 1) if attention == "performer" else (2, 2)
    assert tuple(block(x, padding_mask=mask, grid=grid).shape) == (8, 16, 12)
    names = sorted(w.path.split("/")[-1] for w in block.non_trainable_weights)
    expected = {
        "performer": ["projection"],
        "att": ["keys", "projection"],
        "att+mlp": ["keys", "projection", "stream_keys"],
    }[attention]
    assert names == expected


def test_layers_reject_bad_arguments():
    with pytest.raises(ValueError, match="attention"):
        MIMOFormerBlock(2, 8, 16, attention="softmax")
    with pytest.raises(ValueError, match="num_random_features"):
        FAVORAttention(0)
    with pytest.raises(ValueError, match="capacity"):
        SuperposedFAVORAttention((2, 0))
    with pytest.raises(ValueError, match="dropout"):
        MIMOFormerBlock(2, 8, 16, dropout=1.5)
    with pytest.raises(ValueError, match="heads"):
        FAVORAttention(8)(*[np.zeros((2, 4, 8), "float32")] * 3)


@pytest.mark.parametrize("attention", ["performer", "att", "att+mlp"])
def test_block_config_round_trip_keeps_outputs(attention):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 16, 12)).astype("float32")
    mask = padding_mask(LENGTHS)
    block = MIMOFormerBlock(
        2, 8, 24, attention=attention, capacity=(2, 2), num_random_features=16, dropout=0.1, seed=11
    )
    block.build(x.shape)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(block))
    assert restored.get_config() == block.get_config()
    restored.build(x.shape)
    # same seed -> same weights, projections and keys
    for a, b in zip(block.weights, restored.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    np.testing.assert_array_equal(
        to_numpy(block(x, padding_mask=mask)), to_numpy(restored(x, padding_mask=mask))
    )


def test_unseeded_layers_draw_different_projections_and_save_them(tmp_path):
    a, b = SuperposedFAVORAttention((2, 2), 16), SuperposedFAVORAttention((2, 2), 16)
    for layer in (a, b):
        layer.build((None, None, 2, 8))
    assert not np.array_equal(to_numpy(a.projection), to_numpy(b.projection))
    q, k, v = heads()
    inputs = [keras.Input((16, 2, 8)) for _ in range(3)]
    model = keras.Model(inputs, a(*inputs))
    path = tmp_path / "att.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(to_numpy(loaded.layers[-1].projection), to_numpy(a.projection))
    np.testing.assert_array_equal(to_numpy(loaded.layers[-1].keys), to_numpy(a.keys))
    np.testing.assert_array_equal(
        to_numpy(loaded.predict([q, k, v], verbose=0)),
        to_numpy(model.predict([q, k, v], verbose=0)),
    )


@pytest.mark.parametrize(
    "layer",
    [
        FAVORAttention(32, epsilon=1e-4, seed=3, name="f"),
        SuperposedFAVORAttention((4, 2), 32, bundled_output=True, seed=5, name="s"),
        MultiHeadFAVORAttention(
            3, 4, output_dim=10, attention="att+mlp", capacity=(2, 3), num_random_features=8, seed=1
        ),
    ],
    ids=lambda layer: type(layer).__name__,
)
def test_layer_config_round_trip(layer):
    config = layer.get_config()
    restored = type(layer).from_config(config)
    assert restored.get_config() == config
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is type(layer) and again.get_config() == config
