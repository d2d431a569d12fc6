"""The name space: architectures, recipes and datasets, their naming schemes and their errors."""

import os
import subprocess
import sys

import pytest

from keras_mimo.models import create_model, describe_model, list_models
from keras_mimo.registry import (
    ARCHITECTURES,
    DATASETS,
    UnknownNameError,
    closest_matches,
    get_architecture,
    get_dataset,
    list_datasets,
)
from keras_mimo.training.recipes import RECIPES, get_recipe, list_recipes


def test_one_table_of_architectures_for_both_families():
    assert {"wrn-28-10", "wrn-10-2", "mimoconv-28-10", "mimoconv-10-2"} == set(
        list_models("mimoconv")
    )
    assert len(list_models("mimoformer")) == 39  # 33 of the reference + 6 seq-fashion-mnist
    assert list_models() == sorted(ARCHITECTURES)
    assert set(list_models()) == set(list_models("mimoconv")) | set(list_models("mimoformer"))
    for name in list_models():
        family, _, size = name.partition("-")
        assert family in ("wrn", "mimoconv", "performer", "mimoformer"), name
        assert size, name


def test_architecture_names_build_their_model_with_overrides():
    small = create_model("mimoconv-28-10", depth=10, width=1, initial_width=1, num_classes=100)
    assert (small.capacity, small.num_classes, small.binding, small.activation) == (
        4,
        100,
        "hrr",
        "prelu",
    )
    mnist = create_model("mimoconv-10-2", capacity=2, input_shape=(20, 20, 1))
    assert mnist.image_shape == (20, 20, 1) and len(mnist.blocks) == 3 and mnist.capacity == 2
    assert type(create_model("wrn-10-2")).__name__ == "WideResNet"
    assert "MNIST" in describe_model("mimoconv-10-2")


@pytest.mark.parametrize(
    "lookup, typo, suggestion",
    [
        (create_model, "wrn-28-1", "wrn-28-10"),
        (create_model, "mimoconv-28-01", "mimoconv-28-10"),
        (get_recipe, "mimoconv-10-2.fashion-mnist-n3", "mimoconv-10-2.fashion-mnist-n2"),
        (get_recipe, "mimoconv-10-2.fasion-mnist-dynamic", "mimoconv-10-2.fashion-mnist-dynamic"),
        (get_dataset, "fashon-mnist", "fashion-mnist"),
        (get_dataset, "cifar1000", "cifar100"),
    ],
)
def test_unknown_names_list_the_closest_ones(lookup, typo, suggestion):
    with pytest.raises(UnknownNameError, match="Did you mean") as caught:
        lookup(typo)
    assert suggestion in caught.value.suggestions
    assert repr(typo) in str(caught.value) and repr(suggestion) in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_a_name_far_from_every_known_one_lists_some_known_names():
    with pytest.raises(UnknownNameError, match="Known: ") as caught:
        get_dataset("zzzz")
    assert caught.value.suggestions == []
    # the nearest first
    assert closest_matches("fashion", list(DATASETS)) == ["fashion-mnist", "seq-fashion-mnist"]


def test_dataset_names_accept_underscores_and_aliases():
    assert get_dataset("fashion_mnist").name == "fashion-mnist"
    assert get_dataset("Fashion-MNIST").name == "fashion-mnist"
    assert get_dataset("svhn_cropped").name == "svhn"
    assert list_datasets("image") == ["cifar10", "cifar100", "svhn", "mnist", "fashion-mnist"]
    assert list_datasets("lra") == [
        "listops",
        "text",
        "retrieval",
        "image",
        "pathfinder",
        "seq-fashion-mnist",
    ]
    with pytest.raises(UnknownNameError, match="Unknown Long Range Arena task 'cifar10'"):
        get_dataset("cifar10", family="lra")


def test_lra_vocabularies_live_in_the_dataset_table():
    from keras_mimo.data import lra

    assert lra.LISTOPS_VOCAB_SIZE == DATASETS["listops"].vocab_size == 19
    for task, (_, classes, vocab, _) in lra.LRA_TASKS.items():
        assert (classes, vocab) == (DATASETS[task].num_classes, DATASETS[task].vocab_size)
        assert get_architecture(f"performer-{task}").arguments["vocab_size"] == vocab


def test_recipe_names_are_architecture_dot_dataset_and_regime():
    assert len(RECIPES) == 25 + 39
    for name, recipe in RECIPES.items():
        architecture, _, tag = name.partition(".")
        assert architecture == recipe.architecture, name
        assert tag == recipe.dataset or tag.startswith(recipe.dataset + "-"), name
        regime = tag[len(recipe.dataset) + 1 :]
        assert regime in ("", "n1", "n2", "n4", "dynamic", "dynamic16"), name
        assert "_" not in name, name
        if regime.startswith("n"):
            assert recipe.model_overrides["capacity"] == int(regime[1:]) == recipe.capacity
            assert recipe.eval_superpositions == (int(regime[1:]),)
    dynamic = get_recipe("mimoconv-28-10.cifar10-dynamic")
    assert (dynamic.dynamic_p, dynamic.capacity, dynamic.eval_superpositions) == (0.8, 4, (4, 2, 1))
    wide = get_recipe("mimoconv-10-2.mnist-dynamic16")  # dynamic{capacity} when it is not 4
    assert (wide.capacity, wide.dynamic_low, wide.eval_superpositions) == (16, 4, (16, 8, 4, 2, 1))
    assert get_recipe("wrn-28-10.cifar100").model_overrides == {"num_classes": 100}
    assert "mimoconv-28-10.svhn-dynamic" not in RECIPES
    assert list_recipes("image") == sorted(n for n, r in RECIPES.items() if r.family == "image")


def test_the_registry_and_the_recipes_import_no_keras():
    code = (
        "import sys; import keras_mimo.training.recipes, keras_mimo.registry, keras_mimo.cli; "
        "from keras_mimo.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    ).stdout
    assert out.strip() == "[]"


def test_a_mistyped_recipe_is_reported_before_tensorflow_is_imported():
    """The message names the closest recipe; Keras and TensorFlow are never imported."""
    code = (
        "import sys\n"
        "from keras_mimo.cli import main\n"
        "try:\n"
        "    code = main(['train', '--recipe', 'mimoconv-10-2.fashion-mnist-n5'])\n"
        "except SystemExit as stop:\n"
        "    code = stop.code\n"
        "print('exit', code)\n"
        "print('keras' in sys.modules, 'tensorflow' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ
    )
    assert done.stdout.split("\n")[-2:] == ["False False", ""], done.stdout + done.stderr
    assert "exit 2" in done.stdout
    assert "Did you mean" in done.stderr and "mimoconv-10-2.fashion-mnist-n4" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "module",
    [
        "keras_mimo.grids",
        "keras_mimo.registry.names",
        "keras_mimo.registry.datasets",
        "keras_mimo.registry.architectures",
        "keras_mimo.training.recipes",
        "keras_mimo.presets.registry",
        "keras_mimo.presets.bundled",
    ],
)
def test_the_docstring_examples_of_the_name_space_run(module):
    import doctest
    import importlib

    failed, tried = doctest.testmod(importlib.import_module(module))
    assert tried > 0 and failed == 0
