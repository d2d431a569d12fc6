"""The reference's LRA architectures of MIMOFormer / Performer and their recipes
(keras_mimo/registry/lra.py)."""

import keras
import numpy as np
import pytest

from keras_mimo.models import MIMOFormer, Performer, create_model, describe_model, list_models
from keras_mimo.registry import LRA_TASK_NAMES, UnknownNameError, get_architecture
from keras_mimo.registry.lra import LRA_RECIPES
from keras_mimo.training.recipes import get_recipe


def arguments(name):
    return get_architecture(name).arguments


def training_recipe(name):
    """The one recipe of an LRA architecture: NAME.TASK."""
    return get_recipe(f"{name}.{get_architecture(name).facts['task']}")


FAMILIES = ("performer", "mimoformer-att", "mimoformer-attmlp")
VARIANTS = {task: ("", "-deep") for task in LRA_TASK_NAMES}
VARIANTS["retrieval"] = ("", "-deep", "-small")
EXPECTED = sorted(
    f"{family}-{task}{variant}"
    for task in LRA_TASK_NAMES
    for variant in VARIANTS[task]
    for family in FAMILIES
)

SHRINK = dict(
    embedding_dim=8,
    hidden_dim=16,
    head_dim=4,
    num_heads=2,
    num_layers=1,
    max_length=32,
    num_random_features=8,
)


def test_every_name_is_registered():
    assert list_models("mimoformer") == EXPECTED
    assert len(EXPECTED) == 39  # 33 of the reference + 6 of seq-fashion-mnist (ours)
    names = list_models()
    assert set(EXPECTED) <= set(names)
    # the CNN entries are in the same table
    assert {"wrn-28-10", "mimoconv-28-10", "mimoconv-10-2"} <= set(names)
    for name in EXPECTED:
        assert describe_model(name).startswith("LRA ")
        assert training_recipe(name).architecture == name


def test_unknown_name_gives_the_registry_error():
    with pytest.raises(
        UnknownNameError,
        match=r"Unknown architecture 'mimoformer-att-lisops'\. "
        r"Did you mean 'mimoformer-att-listops'",
    ):
        create_model("mimoformer-att-lisops")
    with pytest.raises(UnknownNameError, match=r"Unknown recipe .*mimoformer-att-listops\.listops"):
        get_recipe("mimoformer-att-lisops.listops")


# Literals read from MIMOFormer/code/lra_config.py (github IBM/multiple-input-multiple-output-nets):
# "model" blocks (embedding_dim, transformer_hidden_dim, head_dim, num_head, num_layers, max_seq_len
# rounded
# up to a power of two by run_tasks.py, num_classes) and extra_attn_config (mimo_M, mimo_N).
REFERENCE = {
    "mimoformer-att-listops": dict(
        embedding_dim=512,
        hidden_dim=2048,
        head_dim=64,
        num_heads=48,
        num_layers=1,
        max_length=2048,
        num_classes=10,
        capacity=(4, 4),
    ),
    "mimoformer-att-listops-deep": dict(
        embedding_dim=512,
        hidden_dim=2048,
        head_dim=64,
        num_heads=8,
        num_layers=6,
        max_length=2048,
        num_classes=10,
        capacity=(4, 4),
    ),
    "mimoformer-attmlp-text": dict(
        embedding_dim=512,
        hidden_dim=2048,
        head_dim=64,
        num_heads=48,
        num_layers=1,
        max_length=4096,
        num_classes=2,
        capacity=(2, 2),
    ),
    "performer-text-deep": dict(
        embedding_dim=512,
        hidden_dim=2048,
        head_dim=64,
        num_heads=8,
        num_layers=6,
        max_length=4096,
        num_classes=2,
    ),
    "mimoformer-attmlp-retrieval": dict(
        embedding_dim=128,
        hidden_dim=512,
        head_dim=32,
        num_heads=16,
        num_layers=1,
        max_length=4096,
        num_classes=2,
        capacity=(4, 4),
        dual=True,
    ),
    "performer-retrieval-deep": dict(
        embedding_dim=128, hidden_dim=512, head_dim=32, num_heads=4, num_layers=4, dual=True
    ),
    "mimoformer-att-retrieval-small": dict(
        embedding_dim=32,
        hidden_dim=64,
        head_dim=32,
        num_heads=2,
        num_layers=2,
        capacity=(4, 4),
        dual=True,
    ),
    "performer-image": dict(
        embedding_dim=64,
        hidden_dim=128,
        head_dim=64,
        num_heads=12,
        num_layers=1,
        max_length=1024,
        num_classes=10,
    ),
    "mimoformer-att-image-deep": dict(
        embedding_dim=64, hidden_dim=128, head_dim=64, num_heads=4, num_layers=3, capacity=(4, 4)
    ),
    "mimoformer-attmlp-pathfinder": dict(
        embedding_dim=128,
        hidden_dim=128,
        head_dim=128,
        num_heads=32,
        num_layers=1,
        max_length=1024,
        num_classes=2,
        capacity=(2, 2),
    ),
    "mimoformer-att-pathfinder-deep": dict(
        embedding_dim=128, hidden_dim=128, head_dim=128, num_heads=8, num_layers=4, capacity=(4, 4)
    ),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_arguments_equal_the_reference(name):
    cls, kwargs = get_architecture(name).model_class(), arguments(name)
    for key, value in REFERENCE[name].items():
        assert kwargs[key] == value, (name, key)
    # rp_dim 256, dropout_prob 0.1, pooling_mode MEAN everywhere
    assert kwargs["num_random_features"] == 256
    assert kwargs["dropout"] == 0.1
    assert kwargs["pooling"] == "mean"
    if name.startswith("performer"):
        assert cls is Performer and "capacity" not in kwargs and "attention" not in kwargs
    else:
        assert cls is MIMOFormer
        assert kwargs["attention"] == ("att" if name.startswith("mimoformer-att-") else "att+mlp")


def test_every_config_is_consistent():
    for name in EXPECTED:
        kwargs = arguments(name)
        task = get_architecture(name).facts["task"]
        suffix = name[name.index(task) + len(task) :]
        assert suffix in VARIANTS[task] and name.startswith(FAMILIES), name
        assert task in LRA_TASK_NAMES
        assert kwargs.get("dual", False) == (task == "retrieval"), name
        # wide and deep keep the total number of heads
        total = {
            "listops": 48,
            "text": 48,
            "retrieval": 16,
            "image": 12,
            "pathfinder": 32,
            "seq-fashion-mnist": 12,  # ours: Image's
        }[task]
        if not name.endswith("-small"):
            assert kwargs["num_heads"] * kwargs["num_layers"] == total, name


def test_vocabularies_and_classes_match_our_tokenisers():
    from keras_mimo.data.lra import LRA_TASKS

    for name in EXPECTED:
        kwargs = arguments(name)
        task = training_recipe(name).dataset
        _, classes, vocab, _ = LRA_TASKS[task]
        assert kwargs["vocab_size"] == vocab, name
        assert kwargs["num_classes"] == classes, name
        # the data (2000 / 4000 / 1024 tokens) fit the position table
        assert training_recipe(name).data_options.get("max_length", 1024) <= kwargs["max_length"]
    assert (
        LRA_TASKS["listops"][2] == 19
        and LRA_TASKS["text"][2] == 257
        and LRA_TASKS["image"][2] == 256
    )


def test_training_recipes():
    # lra_config.py "training" blocks and extra_attn_config['mimoformer']['MIMO_warmup']; the step
    # counts and
    # MIMO warm-ups are also those of docs/design.md section 3.
    expected = {  # batch_size, warmup, num_train_steps, MIMO_warmup, eval_frequency, num_eval_steps
        "listops": (64, 1000, 20000, 3000, 50, 62),
        "text": (32, 8000, 40000, 6500, 500, 781),
        "retrieval": (32, 800, 60000, 10000, 300, 565),
        "image": (256, 175, 70000, 10000, 175, 20),
        "pathfinder": (256, 312, 124800, 20800, 312, 312),
    }
    for task, numbers in expected.items():
        r = LRA_RECIPES[task]
        assert (
            r["batch_size"],
            r["warmup_steps"],
            r["num_train_steps"],
            r["mimo_warmup_steps"],
            r["eval_frequency"],
            r["num_eval_steps"],
        ) == numbers
        assert r["learning_rate"] == 1e-4 and r["weight_decay"] == 0.0 and r["lr_decay"] == "linear"

    att = training_recipe("mimoformer-att-listops")
    assert att.name == "mimoformer-att-listops.listops"
    assert att.command == (
        "keras-mimo train --recipe mimoformer-att-listops.listops "
        "--output runs/mimoformer-att-listops.listops"
    )
    assert att.grid == (4, 4) and att.batch_bundles == 4 and att.mimo_warmup_steps == 3000
    assert att.optimizer == "adamw" and att.epsilon == 1e-6 and att.seed == 1234
    assert (att.steps, att.warmup_steps, att.eval_frequency, att.eval_steps) == (
        20000,
        1000,
        50,
        62,
    )
    assert (att.base_momentum, att.max_momentum) == (0.85, 0.95)  # beta_1 cycled 0.95 -> 0.85
    attmlp = training_recipe("mimoformer-attmlp-image")
    assert attmlp.grid == (2, 2) and attmlp.batch_bundles == 64 and attmlp.mimo_warmup_steps == 0
    performer = training_recipe("performer-retrieval-deep")
    assert performer.grid == (1, 1) and performer.batch_bundles == 32
    assert performer.mimo_warmup_steps == 0
    assert training_recipe("mimoformer-att-text").data_options == {"max_length": 4000}
    for name in EXPECTED:
        recipe = training_recipe(name)
        m, n = recipe.grid
        assert recipe.batch_bundles * m * n == recipe.batch_size
        assert recipe.family == "lra" and recipe.dataset in LRA_TASK_NAMES


def _build_names():
    # one configuration per (attention type, task); the JAX backend traces slowly, so it builds only
    # the wide models of two tasks plus Retrieval (dual) for each attention type
    names = [f"{family}-{task}" for family in FAMILIES for task in LRA_TASK_NAMES]
    if keras.backend.backend() == "jax":
        names = [name for name in names if name.endswith(("-listops", "-retrieval"))]
    return names


@pytest.mark.parametrize("name", _build_names())
def test_shrunken_model_builds_and_classifies(name):
    model = create_model(name, seed=0, **SHRINK)
    kwargs = arguments(name)
    assert model.max_length == 32 and model.embedding_dim == 8
    rng = np.random.default_rng(0)
    batch, length = 4, 32

    def ids():
        return rng.integers(1, kwargs["vocab_size"], size=(batch, length)).astype("int32")

    inputs = (ids(), ids()) if kwargs.get("dual") else ids()
    logits = keras.ops.convert_to_numpy(model(inputs, training=False))
    assert logits.shape == (batch, kwargs["num_classes"])
    assert np.all(np.isfinite(logits))
