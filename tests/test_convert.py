"""Golden agreement with the reference PyTorch MIMOConv (tests/golden/make_reference_goldens.py made the data)."""

import json
import pathlib

import numpy as np
import pytest
from harness import assert_close

from keras_mimo.convert import from_reference, reference_key
from keras_mimo.models import MIMOConv, WideResNet

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
