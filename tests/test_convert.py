"""Golden agreement with the reference PyTorch MIMOConv and MIMOFormer, through keras_mimo.convert.

tests/golden/make_reference_goldens.py made the MIMOConv data (tests/data/reference),
tests/golden/make_mimoformer_goldens.py the MIMOFormer data (tests/data/reference_mimoformer).
"""

import json
import pathlib

import numpy as np
import pytest
from harness import assert_close, to_numpy

from keras_mimo.convert import (
    from_mimoformer_reference,
    from_reference,
    mimoformer_arguments,
    reference_key,
)
from keras_mimo.models import MIMOConv, MIMOFormer, Performer, WideResNet

GOLDEN_DIR = pathlib.Path(__file__).parent / "data" / "reference"
CASES = sorted(p.stem for p in GOLDEN_DIR.glob("*.npz"))
ACTIVATION = {"BasicBlock": "relu", "AdjustedISOBlock": "prelu", "BasicISOBlock": "srelu"}


def load_golden(case):
    with np.load(GOLDEN_DIR / f"{case}.npz") as data:
        arrays = {key: data[key] for key in data.files}
    config = json.loads(str(arrays.pop("config")))
    params = {
        key[len("param/") :]: value for key, value in arrays.items() if key.startswith("param/")
    }
    return config, params, arrays


def build_model(config):
    shape = (config["image_size"], config["image_size"], config["input_channels"])
    depth = 6 * config["layers"][0] + 4
    common = dict(
        depth=depth,
        width=config["width"],
        num_classes=config["num_classes"],
        input_shape=shape,
        initial_width=config["initial_width"],
    )
    if (
        config["model_class"] == "SuperWideResnet"
        and config["binding"] == "None"
        and config["capacity"] == 1
    ):
        return WideResNet(**common)
    return MIMOConv(
        capacity=config["capacity"],
        binding=config["binding"].lower(),
        activation=ACTIVATION[config["block"]],
        isometry_regularization=1e-4 if config["model_class"] == "SuperWideISONet" else 0.0,
        **common,
    )


def test_golden_cases_are_present():
    assert len(CASES) >= 7, f"expected the seven reference cases in {GOLDEN_DIR}, found {CASES}"


@pytest.mark.parametrize("case", CASES)
def test_converted_model_matches_reference_logits(case):
    config, params, arrays = load_golden(case)
    model = from_reference(params, build_model(config))
    images = np.transpose(arrays["inputs"], (0, 2, 3, 1))
    levels = sorted(int(k[len("logits_n") :]) for k in arrays if k.startswith("logits_n"))
    assert levels == [n for n in (1, 2, 4) if config["capacity"] % n == 0]
    for n in levels:
        model.superposition = n
        assert_close(model(images, training=False), arrays[f"logits_n{n}"], rtol=1e-4)


@pytest.mark.parametrize("case", CASES)
def test_model_losses_are_the_reference_regularisers(case):
    config, params, arrays = load_golden(case)
    model = from_reference(params, build_model(config))
    total = sum(float(loss) for loss in model.losses)
    expected = 0.1 * float(arrays["binding_regularization"]) + 1e-4 * float(
        arrays["isometry_regularization"]
    )
    np.testing.assert_allclose(total, expected, rtol=1e-4, atol=1e-9)


def test_reference_key_reverses_and_shifts():
    w = np.arange(8.0)
    # h[m] = w[(C/2 - 1 - m) mod C] with C = 8: h = w[3, 2, 1, 0, 7, 6, 5, 4]
    np.testing.assert_array_equal(reference_key(w, 8), [3, 2, 1, 0, 7, 6, 5, 4])


def test_mismatched_names_are_listed():
    config, params, _ = load_golden("hrr_cap4_prelu")
    params = dict(params)
    params["layer9.0.conv1.weight"] = params.pop("layer1.0.conv1.weight")
    with pytest.raises(ValueError) as error:
        from_reference(params, build_model(config))
    message = str(error.value)
    assert "layer9.0.conv1.weight" in message and "layer1.0.conv1.weight" in message


def test_skip_init_checkpoints_are_refused_not_silently_changed():
    config, params, _ = load_golden("none_cap4_relu")
    params = dict(params, **{"layer2.0.alpha": np.array(0.3, dtype="float32")})
    with pytest.raises(ValueError, match="skip_init=True .*layer2.0.alpha"):
        from_reference(params, build_model(config))


def test_wrong_configuration_names_shapes_and_leaves_model_untouched():
    config, params, _ = load_golden("hrr_cap4_prelu")
    model = build_model({**config, "width": 2})
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="shape mismatches"):
        from_reference(params, model)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_loads_pt_checkpoint(tmp_path):
    torch = pytest.importorskip("torch", reason="reading .pt files needs torch (the torch extra)")
    config, params, arrays = load_golden("mbat_cap4_prelu")
    path = tmp_path / "reference.pt"
    torch.save(
        {
            "model_state_dict": {k: torch.from_numpy(np.array(v)) for k, v in params.items()},
            "epoch": 3,
        },
        path,
    )
    model = from_reference(str(path), build_model(config))
    model.superposition = 4
    images = np.transpose(arrays["inputs"], (0, 2, 3, 1))
    assert_close(model(images, training=False), arrays["logits_n4"], rtol=1e-4)


# --------------------------------------------------------------------------- MIMOFormer
FORMER_DIR = pathlib.Path(__file__).parent / "data" / "reference_mimoformer"
FORMER_CASES = ["model_performer", "model_att_2x2", "model_attmlp_2x2"]
FORMER_TOLERANCE = 1e-4  # max |ours - reference| / max |reference|


def load_former_golden(case):
    """The reference config, its ``ModelForSC`` state_dict (as the reference names it) and data.

    The golden files store the encoder's and the head's state_dicts apart
    (``param/encoder/...``, ``param/head/...``); in ModelForSC they are ``model.`` and
    ``seq_classifer.``.
    """
    with np.load(FORMER_DIR / f"{case}.npz") as data:
        arrays = {key: data[key] for key in data.files}
    config = json.loads(str(arrays.pop("config")))
    prefixes = {"param/encoder/": "model.", "param/head/": "seq_classifer."}
    state_dict = {}
    for key, value in arrays.items():
        for ours, theirs in prefixes.items():
            if key.startswith(ours):
                state_dict[theirs + key[len(ours) :]] = value
    return config, state_dict, arrays


def build_former(config):
    """Unseeded: weights the converter missed would be random, and the outputs would differ."""
    return MIMOFormer(**mimoformer_arguments(config["model"]))


def relative_error(ours, reference):
    return float(np.abs(to_numpy(ours) - reference).max() / np.abs(reference).max())


@pytest.mark.parametrize("case", FORMER_CASES)
def test_converted_mimoformer_matches_reference(case):
    config, state_dict, arrays = load_former_golden(case)
    model = build_former(config)
    assert model.capacity == tuple(config["capacity"]) and model.pooling == "mean"
    assert from_reference(state_dict, model) is model  # from_reference hands MIMOFormers on
    ids = arrays["token_ids"]
    np.testing.assert_array_equal((ids != 0).astype("float32"), arrays["mask"])
    assert relative_error(model.encode(ids), arrays["pooled"]) < FORMER_TOLERANCE
    grids = sorted(k for k in arrays if k.startswith("logits_"))
    assert grids[-1] == "logits_%dx%d" % model.capacity
    for key in grids:
        model.grid = tuple(int(v) for v in key[len("logits_") :].split("x"))
        error = relative_error(model(ids), arrays[key])
        assert error < FORMER_TOLERANCE, (key, error)


def test_mimoformer_conversion_replaces_every_weight():
    config, state_dict, _ = load_former_golden("model_attmlp_2x2")
    model = build_former(config)
    before = [to_numpy(w).copy() for w in model.weights]
    from_mimoformer_reference(state_dict, model)
    unchanged = [
        w.path for w, old in zip(model.weights, before) if np.array_equal(to_numpy(w), old)
    ]
    assert unchanged == []


def test_mimoformer_mismatched_names_are_listed_and_nothing_changes():
    config, state_dict, _ = load_former_golden("model_att_2x2")
    renamed = dict(state_dict)
    renamed["model.transformer_9.norm1.weight"] = renamed.pop("model.transformer_0.norm1.weight")
    model = build_former(config)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError) as error:
        from_mimoformer_reference(renamed, model)
    message = str(error.value)
    assert "do not match the model: model.transformer_9.norm1.weight" in message
    assert "missing from the state_dict: model.transformer_0.norm1.weight" in message
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_mimoformer_wrong_configuration_names_shapes_and_leaves_model_untouched():
    config, state_dict, _ = load_former_golden("model_att_2x2")
    # capacity (4, 1) has as many keys as (2, 2): only the shape check can tell them apart
    model = MIMOFormer(**{**mimoformer_arguments(config["model"]), "capacity": (4, 1)})
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"shape mismatches: .*mha\.attn\.bindings"):
        from_mimoformer_reference(state_dict, model)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    with pytest.raises(TypeError, match="MIMOFormer"):
        from_mimoformer_reference(state_dict, build_model(load_golden("wrn_cap1")[0]))
    with pytest.raises(TypeError, match="MIMOConv, WideResNet, MIMOFormer or Performer"):
        from_reference(state_dict, object())


def test_mimoformer_tied_checkpoint_loads_into_every_block():
    config, state_dict, _ = load_former_golden("model_performer")
    tied = {}
    for name, value in state_dict.items():
        if name.startswith("model.transformer_1."):
            continue
        tied[name.replace("model.transformer_0.", "model.transformer.")] = value
    model = Performer(
        **{
            k: v
            for k, v in mimoformer_arguments(config["model"]).items()
            if k not in ("attention", "capacity")
        }
    )
    from_mimoformer_reference(tied, model)
    first, second = model.blocks
    for a, b in zip(first.weights, second.weights):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    np.testing.assert_array_equal(
        to_numpy(first.attn.query_dense.kernel), tied["model.transformer.mha.W_q.weight"].T
    )


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(attn_type="softmax"), "attn_type='softmax' has no keras-mimo counterpart"),
        (dict(pooling_mode="CLS"), "MEAN only"),
        (dict(learn_pos_emb=False), "learns its position embedding"),
    ],
)
def test_mimoformer_arguments_refuse_what_we_do_not_compute(change, message):
    config, _, _ = load_former_golden("model_att_2x2")
    with pytest.raises(ValueError, match=message):
        mimoformer_arguments({**config["model"], **change})


def test_mimoformer_loads_pt_checkpoint(tmp_path):
    torch = pytest.importorskip("torch", reason="reading .pt files needs torch (the torch extra)")
    config, state_dict, arrays = load_former_golden("model_att_2x2")
    path = tmp_path / "model_best.pth.tar"
    torch.save({"model_state_dict": {k: torch.from_numpy(v) for k, v in state_dict.items()}}, path)
    model = from_mimoformer_reference(str(path), build_former(config))
    assert relative_error(model(arrays["token_ids"]), arrays["logits_2x2"]) < FORMER_TOLERANCE
