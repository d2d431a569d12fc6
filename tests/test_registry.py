"""The name space: architectures, recipes and datasets, their naming schemes and their errors."""

import pytest

from keras_mimo.models import create_model, describe_model, list_models


def test_registry_names_and_overrides():
    names = list_models()
    assert {
        "wrn-28-10",
        "mimoconv-28-10-n1",
        "mimoconv-28-10-n2",
        "mimoconv-28-10-n4",
        "mimoconv-28-10-dynamic",
        "mimonet-10-mnist",
    } <= set(names)
    assert "MNIST" in describe_model("mimonet-10-mnist")
    small = create_model("mimoconv-28-10-n4", depth=10, width=1, initial_width=1, num_classes=100)
    assert (small.capacity, small.num_classes, small.binding, small.activation) == (
        4,
        100,
        "hrr",
        "prelu",
    )
    mnist = create_model("mimonet-10-mnist")
    assert mnist.image_shape == (20, 20, 1) and len(mnist.blocks) == 3
    with pytest.raises(ValueError, match="Unknown model 'wrn-99'"):
        create_model("wrn-99")
