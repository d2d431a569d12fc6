"""Training recipes of both families as one dataclass: ``keras-mimo train --recipe NAME``.

A recipe names how one architecture is trained on one dataset:
``{architecture}.{dataset}[-{regime}]``, regime ``n1`` / ``n2`` / ``n4`` (capacity and training
N) or ``dynamic`` (capacity 4, a batch at N = 4 with probability 0.8, else at N = 1). The Long
Range Arena architectures are sized per task, so their one recipe is ``{architecture}.{task}``.
The preset a recipe trains carries the recipe's name.

==============================================  =================================================
recipe                                          what it reproduces (defaults are the paper's)
==============================================  =================================================
wrn-28-10.cifar10                               CIFAR-10 WideResNet-28-10 baseline, 200 epochs
mimoconv-28-10.cifar10-n1 / -n2 / -n4           CIFAR-10 MIMOConv at N = 1, 2, 4, 1200 epochs
mimoconv-28-10.cifar10-dynamic                  CIFAR-10 dynamic model, validated at N = 4, 2, 1
... .cifar100-..., ... .svhn-...                the same for CIFAR-100 and SVHN (no dynamic)
wrn-10-2.mnist, mimoconv-10-2.mnist-n2 ...      MNIST (20x20 centre crops), 200 epochs
mimoconv-10-2.mnist-dynamic16                   MNIST, capacity 16 served at N = 1 ... 16
wrn-10-2.fashion-mnist, ...                     Fashion-MNIST likewise (this project's runs)
performer-listops.listops, ...                  every LRA architecture on its task
mimoformer-att-listops.listops, ...             (reference settings, keras_mimo.registry.lra)
performer-seq-fashion-mnist.seq-fashion-mnist   keras-mimo's own LRA-style task (in neither LRA
mimoformer-att-seq-fashion-mnist.seq-..., ...   nor the reference): Fashion-MNIST as 784 pixel
                                                tokens, with LRA Image's models and settings
==============================================  =================================================

Image recipes train with ``FilteredSGD`` (PyTorch SGD semantics, coupled weight decay 1e-5
skipping PReLU/SReLU parameters, gradient filter factor 10, global clip norm 1e3), the cosine
one-cycle schedule (max lr 0.2, pct_start 0.3, momentum 0.95 -> 0.85 -> 0.95), mixup alpha 1.0
before superposition, batches of 128 superpositions (128 * N images) and N passes over the data
per epoch at capacity N. LRA recipes train with ``CyclicAdamW`` and the linear one-cycle schedule
over ``steps`` steps, validating every ``eval_frequency`` steps, with the MIMO warm-up for 'att.'.

``quick(recipe)`` (``--quick``) shrinks any recipe to a CPU smoke test of seconds.

This module is keras-free, so the command line checks a recipe before a backend is imported.
"""

import dataclasses
import math

from keras_mimo.checks import positive_int, positive_number
from keras_mimo.grids import parse_grid
from keras_mimo.registry import get_architecture, get_dataset, list_architectures, lookup
from keras_mimo.registry.lra import LRA_RECIPES, RECIPE_COMMON, task_arguments

FAMILIES = ("image", "lra")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """Everything one training run needs; ``keras-mimo train`` flags override single fields.

    Shared by both families: ``name``, ``architecture``, ``dataset``, ``description``,
    ``model_overrides`` (constructor arguments changed from the architecture's), ``seed``,
    ``optimizer`` (``sgd`` or ``adamw``), ``batch_size`` (image: superpositions per step, so
    ``batch_size * N`` images; LRA: sequences per step, as the reference counts), ``lr`` (peak of
    the
    one-cycle schedule), ``weight_decay``, ``div_factor`` / ``final_div_factor`` (one-cycle start
    and
    end), ``base_momentum`` / ``max_momentum`` (SGD momentum or AdamW beta_1, cycled).

    Image only: ``epochs``, ``pct_start``, ``mixup_alpha``, ``gradient_filter``, ``clipnorm``,
    ``dynamic_p`` / ``dynamic_low`` (dynamic training), ``eval_superpositions``, ``train_split``,
    ``eval_split``, ``augment``.

    LRA only: ``steps`` (optimizer steps in all), ``warmup_steps`` (linear learning-rate warm-up),
    ``eval_frequency`` (steps between validations: one Keras epoch), ``eval_steps`` (dev batches per
    validation), ``mimo_warmup_steps`` ('att.': the first steps at grid M/2 x N/2), ``grid`` (M, N),
    ``data_options`` (what the task's loader takes: sequence length, token offset...),
    ``beta_2``, ``epsilon``.

    Example:

    >>> recipe = get_recipe("mimoconv-10-2.fashion-mnist-n2")
    >>> recipe.replace(epochs=30).epochs
    30
    """

    name: str
    architecture: str
    dataset: str
    description: str
    model_overrides: dict = dataclasses.field(default_factory=dict)
    seed: int = 0
    optimizer: str = "sgd"
    batch_size: int = 128
    lr: float = 0.2
    weight_decay: float = 1e-5
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    # image recipes
    epochs: int | None = 200
    pct_start: float = 0.3
    mixup_alpha: float = 1.0
    gradient_filter: float | None = 10.0
    clipnorm: float | None = 1e3
    dynamic_p: float | None = None
    dynamic_low: int = 1
    eval_superpositions: tuple | None = None
    train_split: str = "train"
    eval_split: str = "test"
    augment: bool = True
    # LRA recipes
    steps: int | None = None
    warmup_steps: int | None = None
    eval_frequency: int | None = None
    eval_steps: int | None = None
    mimo_warmup_steps: int = 0
    grid: tuple | None = None
    data_options: dict = dataclasses.field(default_factory=dict)
    beta_2: float = 0.999
    epsilon: float = 1e-6

    def __post_init__(self):
        # Overrides arrive from the command line: refuse a value that would train nothing, or
        # wrongly, before any run folder is made.
        get_architecture(self.architecture)
        get_dataset(self.dataset)
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer={self.optimizer!r} must be 'sgd' or 'adamw'.")
        positive_int("batch_size", self.batch_size, hint=_BATCH_HINT[self.family])
        positive_number("lr", self.lr)
        if self.family == "image":
            self._check_image_fields()
        else:
            self._check_lra_fields()

    def _check_image_fields(self):
        positive_int("epochs", self.epochs)
        alpha = self.mixup_alpha
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0:
            raise ValueError(f"mixup_alpha={alpha!r} must be a number >= 0 (0 turns mixup off).")
        p = self.dynamic_p
        if p is not None and not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
            raise ValueError(f"dynamic_p={p!r} must be a probability in [0, 1] (or None: fixed N).")
        positive_int("dynamic_low", self.dynamic_low)
        if any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1
            for n in self.eval_superpositions or ()
        ):
            raise ValueError(
                f"eval_superpositions={self.eval_superpositions!r} must hold positive integers "
                "(the N to validate at)."
            )

    def _check_lra_fields(self):
        for field in ("steps", "eval_frequency", "eval_steps"):
            positive_int(field, getattr(self, field))
        warmup = self.warmup_steps
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"warmup_steps={warmup!r} must be an integer >= 0.")
        if warmup >= self.steps:
            raise ValueError(
                f"warmup_steps={warmup} must be below the number of steps ({self.steps})."
            )
        mimo = self.mimo_warmup_steps
        if isinstance(mimo, bool) or not isinstance(mimo, int) or mimo < 0:
            raise ValueError(
                f"mimo_warmup_steps={mimo!r} must be an integer >= 0 (0: no MIMO warm-up)."
            )
        if mimo and self.attention != "att":
            raise ValueError(
                f"{self.name} is not an 'att.' model: the MIMO warm-up only applies to "
                "mimoformer-att-* architectures (the reference does it only there)."
            )
        m, n = parse_grid(self.grid)
        if self.attention == "performer" and (m, n) != (1, 1):
            raise ValueError(
                f"{self.name} trains the Performer baseline, which computes without "
                f"superposition: grid must be 1 x 1, got {m} x {n}."
            )
        if self.batch_size % (m * n):
            raise ValueError(
                f"batch_size={self.batch_size} sequences is not a multiple of the grid "
                f"{m} x {n}: use a multiple of {m * n}."
            )

    @property
    def family(self):
        """``image`` (MIMOConv / WideResNet on images) or ``lra`` (MIMOFormer / Performer)."""
        return get_dataset(self.dataset).family

    @property
    def attention(self):
        """LRA recipes: ``performer``, ``att`` or ``att+mlp``; None for image recipes."""
        return get_architecture(self.architecture).facts.get("attention")

    @property
    def capacity(self):
        """The capacity the model is built with: an int N, or the (M, N) grid for LRA."""
        if self.family == "lra":
            return tuple(self.grid)
        arguments = {**get_architecture(self.architecture).arguments, **self.model_overrides}
        return arguments.get("capacity", 1)

    @property
    def batch_bundles(self):
        """LRA: superposed bundles per step at the full grid (``batch_size / (M * N)``)."""
        m, n = self.grid
        return self.batch_size // (m * n)

    @property
    def command(self):
        """The command that reproduces this recipe's row (on a GPU: the defaults are the
        paper's)."""
        return f"keras-mimo train --recipe {self.name} --output runs/{self.name}"

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        """The recipe as JSON-able data (tuples become lists), as a run's ``config.json`` holds
        it."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


_BATCH_HINT = {"image": " (superpositions per batch)", "lra": " (sequences per step)"}


# ----------------------------------------------------------------------------------------------
# The named recipes
# ----------------------------------------------------------------------------------------------

RECIPES = {}


def register_recipe(recipe):
    """Adds a recipe to the table under its name (a recipe of another name is refused)."""
    if recipe.name in RECIPES:
        raise ValueError(f"recipe {recipe.name!r} is registered twice")
    RECIPES[recipe.name] = recipe
    return recipe


def _image_recipes(dataset, mimoconv, wrn, epochs, dynamic=True, extra=None):
    title = get_dataset(dataset).title
    extra = dict(extra or {})
    register_recipe(
        Recipe(
            name=f"{wrn}.{dataset}",
            architecture=wrn,
            dataset=dataset,
            model_overrides=dict(extra),
            epochs=epochs["wrn"],
            description=f"{title}: {get_architecture(wrn).description}",
        )
    )
    for n in (1, 2, 4):
        register_recipe(
            Recipe(
                name=f"{mimoconv}.{dataset}-n{n}",
                architecture=mimoconv,
                dataset=dataset,
                model_overrides=dict(extra, capacity=n),
                epochs=epochs["mimoconv"],
                eval_superpositions=(n,),
                description=f"{title}: {mimoconv} trained and validated at N = {n}.",
            )
        )
    if dynamic:
        register_recipe(
            Recipe(
                name=f"{mimoconv}.{dataset}-dynamic",
                architecture=mimoconv,
                dataset=dataset,
                model_overrides=dict(extra, capacity=4),
                epochs=epochs["mimoconv"],
                dynamic_p=0.8,
                dynamic_low=1,
                eval_superpositions=(4, 2, 1),
                description=f"{title}: dynamic {mimoconv}, capacity 4, batches at N = 4 w.p. 0.8 "
                "else N = 1; validated at N = 4, 2, 1.",
            )
        )


_PAPER_EPOCHS = dict(wrn=200, mimoconv=1200)  # one MIMOConv epoch = N passes at capacity N
_MNIST_EPOCHS = dict(wrn=200, mimoconv=200)  # the reference's defaults
_image_recipes("cifar10", "mimoconv-28-10", "wrn-28-10", _PAPER_EPOCHS)
_image_recipes("cifar100", "mimoconv-28-10", "wrn-28-10", _PAPER_EPOCHS, extra={"num_classes": 100})
_image_recipes("svhn", "mimoconv-28-10", "wrn-28-10", _PAPER_EPOCHS, dynamic=False)
_image_recipes("mnist", "mimoconv-10-2", "wrn-10-2", _MNIST_EPOCHS)
_image_recipes("fashion-mnist", "mimoconv-10-2", "wrn-10-2", _MNIST_EPOCHS)
# The DataMUX comparison of the paper serves N = 1 ... 16 on MNIST: one capacity-16 model, trained
# at N = 16 (p = 0.8) and N = 4 (an N = 1 batch would cost 16 superposed ones).
register_recipe(
    Recipe(
        name="mimoconv-10-2.mnist-dynamic16",
        architecture="mimoconv-10-2",
        dataset="mnist",
        model_overrides=dict(capacity=16),
        epochs=_MNIST_EPOCHS["mimoconv"],
        dynamic_p=0.8,
        dynamic_low=4,
        eval_superpositions=(16, 8, 4, 2, 1),
        description="MNIST: dynamic mimoconv-10-2, capacity 16, batches at N = 16 w.p. 0.8 else "
        "N = 4; validated at N = 16, 8, 4, 2, 1.",
    )
)


def _lra_recipe(architecture):
    facts = architecture.facts
    task, attention = facts["task"], facts["attention"]
    settings = {**RECIPE_COMMON, **LRA_RECIPES[task]}
    beta_1_low, beta_1_high = sorted(settings["cycle_beta_1"])
    return Recipe(
        name=f"{architecture.name}.{task}",
        architecture=architecture.name,
        dataset=task,
        description=architecture.description,
        seed=settings["seed"],
        optimizer="adamw",
        batch_size=settings["batch_size"],
        lr=settings["learning_rate"],
        weight_decay=settings["weight_decay"],
        div_factor=settings["div_factor"],
        final_div_factor=settings["final_div_factor"],
        base_momentum=beta_1_low,
        max_momentum=beta_1_high,
        epochs=None,
        mixup_alpha=0.0,
        gradient_filter=None,
        clipnorm=None,
        augment=False,
        steps=settings["num_train_steps"],
        warmup_steps=settings["warmup_steps"],
        eval_frequency=settings["eval_frequency"],
        eval_steps=settings["num_eval_steps"],
        mimo_warmup_steps=settings["mimo_warmup_steps"] if attention == "att" else 0,
        grid=tuple(facts["capacity"]),
        data_options=dict(settings["data"]),
        beta_2=settings["beta_2"],
        epsilon=settings["epsilon"],
    )


for _name in list_architectures("mimoformer"):
    register_recipe(_lra_recipe(get_architecture(_name)))


def list_recipes(family=None):
    """The recipe names, sorted; ``family`` = ``image`` or ``lra`` for one family's."""
    return sorted(n for n, r in RECIPES.items() if family in (None, r.family))


def get_recipe(name):
    """The named :class:`Recipe` (or ``name`` itself if it is one); closest names if unknown."""
    if isinstance(name, Recipe):
        return name
    return lookup(RECIPES, name, "recipe", listing="`keras-mimo train --list`")


# ----------------------------------------------------------------------------------------------
# Changing a recipe: command-line overrides and --quick
# ----------------------------------------------------------------------------------------------

QUICK_IMAGE_MODEL = dict(depth=10, width=1, initial_width=1)
QUICK_LRA_MODEL = dict(
    embedding_dim=16, hidden_dim=32, num_heads=2, head_dim=8, num_layers=1, num_random_features=16
)
QUICK_LENGTH = 64
LENGTH_TASKS = ("listops", "text", "retrieval")  # the tasks whose sequence length can change
QUICK_EXAMPLES = 64
# Tasks whose full data are always local (found automatically): --quick reads only the first
# QUICK_EXAMPLES sequences of each split (ListOps instead generates a tiny set).
EXAMPLES_TASKS = ("seq-fashion-mnist",)


def quick(recipe):
    """``--quick``: the same recipe on a tiny model, tiny data and a few steps, for CPU smoke tests.

    Image: a depth-10, width-1 body with a 16-channel stem, 2 epochs, 4 superpositions per batch,
    the first 64 training and 32 test examples. LRA: a one-layer, 16-wide model, sequences of at
    most 64 tokens, 4 steps of 2 bundles, validation every 2 steps on 2 batches; seq-fashion-mnist
    reads the first 64 images of each split.
    """
    recipe = get_recipe(recipe)
    if recipe.family == "image":
        return recipe.replace(
            name=recipe.name + "-quick",
            model_overrides={**recipe.model_overrides, **QUICK_IMAGE_MODEL},
            epochs=2,
            batch_size=4,
            train_split=_head(recipe.train_split, 64),
            eval_split=_head(recipe.eval_split, 32),
        )
    m, n = recipe.grid
    data_options = dict(recipe.data_options)
    if recipe.dataset in LENGTH_TASKS:
        data_options["max_length"] = QUICK_LENGTH
    if recipe.dataset in EXAMPLES_TASKS:
        data_options["max_examples"] = QUICK_EXAMPLES
    return recipe.replace(
        name=recipe.name + "-quick",
        model_overrides={**recipe.model_overrides, **QUICK_LRA_MODEL},
        steps=4,
        eval_frequency=2,
        eval_steps=2,
        warmup_steps=1,
        batch_size=2 * m * n,
        mimo_warmup_steps=min(recipe.mimo_warmup_steps, 2),
        data_options=data_options,
    )


def _head(split, count):
    return split if "[" in split else f"{split}[:{count}]"


def resolve_recipe(recipe, *, quick=False, grid=None, max_length=None, **changes):
    """The recipe ``recipe`` (a name or a Recipe) with overrides applied; ValueError for bad ones.

    ``changes`` replace recipe fields (None values are ignored). ``model_overrides`` are merged
    into the recipe's own. LRA only: ``grid`` (``"2x2"`` or (M, N)) sets the model's capacity and
    the grid it trains and validates at; ``max_length`` shortens ListOps / Text / Retrieval
    sequences (data and the model's position table); ``steps`` is rounded up to whole validation
    blocks of ``eval_frequency`` steps.
    """
    original = get_recipe(recipe)
    recipe = original
    if recipe.family == "lra" and grid is not None:  # --quick sizes its batch for the new grid
        recipe = recipe.replace(**_lra_changes(recipe, {}, grid, None))
        grid = None
    recipe = _quick(recipe) if quick else recipe
    changes = {k: v for k, v in changes.items() if v is not None}
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(Recipe)})
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not a recipe field.")
    if "model_overrides" in changes:
        changes["model_overrides"] = {**recipe.model_overrides, **changes["model_overrides"]}
    if recipe.family == "lra":
        changes = _lra_changes(recipe, changes, grid, max_length)
    elif grid is not None or max_length is not None:
        flag = "grid" if grid is not None else "max_length"
        raise ValueError(
            f"{flag} applies to the Long Range Arena recipes only; {recipe.name} trains images "
            "(use eval_superpositions / capacity for N)."
        )
    model_changes = {
        k: v
        for k, v in changes.get("model_overrides", {}).items()
        if original.model_overrides.get(k) != v
    }
    if model_changes and not quick:  # the description names the recipe's own model
        changes["description"] = (
            recipe.description
            + " Model overridden: "
            + ", ".join(f"{k}={v!r}" for k, v in sorted(model_changes.items()))
            + "."
        )
    return recipe.replace(**changes) if changes else recipe


_quick = quick


def _lra_changes(recipe, changes, grid, max_length):
    overrides = dict(changes.get("model_overrides", recipe.model_overrides))
    if grid is not None:
        overrides["capacity"] = list(parse_grid(grid))
    if "capacity" in overrides and recipe.attention != "performer":
        changes["grid"] = parse_grid(overrides["capacity"])
    elif grid is not None:
        changes["grid"] = parse_grid(grid)  # refused by the recipe's check unless 1 x 1
    data_options = dict(changes.get("data_options", recipe.data_options))
    if max_length is not None:
        if recipe.dataset not in LENGTH_TASKS:
            raise ValueError(
                "max_length only applies to listops, text and retrieval: "
                f"{recipe.dataset} sequences are images of fixed size."
            )
        data_options["max_length"] = positive_int("max_length", max_length)
    if data_options != recipe.data_options:
        changes["data_options"] = data_options
    if "max_length" in data_options:
        length = task_arguments(recipe.dataset, data_options["max_length"])["max_length"]
        if length != get_architecture(recipe.architecture).arguments["max_length"]:
            overrides.setdefault("max_length", length)
    if overrides != recipe.model_overrides:
        changes["model_overrides"] = overrides
    if "steps" in changes or "eval_frequency" in changes:
        frequency = changes.get("eval_frequency", recipe.eval_frequency)
        frequency = positive_int("eval_frequency", frequency)
        steps = positive_int("steps", changes.get("steps", recipe.steps))
        changes["steps"] = math.ceil(steps / frequency) * frequency
    return changes


def epochs_of(recipe):
    """Keras epochs of a run: the recipe's epochs (image) or its validation blocks (LRA)."""
    if recipe.family == "image":
        return recipe.epochs
    return math.ceil(recipe.steps / recipe.eval_frequency)
