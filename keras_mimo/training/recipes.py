"""The paper's training recipes as named configurations (``keras-mimo train --config NAME``).

Every recipe trains through ``model.fit`` with ``FilteredSGD`` (PyTorch SGD semantics, coupled
weight decay 1e-5 skipping PReLU/SReLU parameters, gradient filter factor 10, global clip norm
1e3 as the reference's ``clip_grad_norm_``), the one-cycle schedule (max lr 0.2, pct_start 0.3,
div 25, final div 1e4, momentum 0.95 -> 0.85 -> 0.95, cosine), mixup alpha 1.0 before
superposition, batches of 128 superpositions (128 * N images) and N passes over the data per
epoch at capacity N (so every model sees the same number of body evaluations per epoch).
Validation runs at every N the recipe lists; the best checkpoint follows the accuracy at capacity.

Recipes (``keras-mimo train --config NAME --output runs/NAME`` reproduces the row on a GPU;
the defaults are the paper's, so no other flag is needed):

=================================  ===================================  ======  ==================================
name                               model                                epochs  what it reproduces
=================================  ===================================  ======  ==================================
cifar10-wrn-28-10                  wrn-28-10                            200     CIFAR-10 WideResNet-28-10 baseline
cifar10-mimoconv-28-10-n1          mimoconv-28-10-n1                    1200    CIFAR-10 MIMOConv, N = 1
cifar10-mimoconv-28-10-n2          mimoconv-28-10-n2                    1200    CIFAR-10 MIMOConv, N = 2
cifar10-mimoconv-28-10-n4          mimoconv-28-10-n4                    1200    CIFAR-10 MIMOConv, N = 4
cifar10-mimoconv-28-10-dynamic     mimoconv-28-10-dynamic               1200    CIFAR-10 dynamic (80% N=4, 20% N=1),
                                                                                evaluated at N = 1, 2, 4
cifar100-*                         same five, num_classes=100           same    the CIFAR-100 rows
svhn-wrn-28-10, svhn-mimoconv-     same, on SVHN (train split,          200 /   SVHN rows, with the CIFAR recipe
28-10-n1/n2/n4                     crop padding 2, no flip)             1200    (check the paper's appendix for
                                                                                SVHN-specific epochs)
mnist-mimonet-10-n1/n2/n4          mimonet-10-mnist (20x20 crops,       200     MNIST MIMONet-10 at N = 1, 2, 4
                                   capacity set to N)                           (reference defaults: 200 epochs)
mnist-wrn-10                       WideResNet-10-2 on 20x20 crops       200     MNIST baseline of the same body
fashion_mnist-mimonet-10-n1/n2/n4  as mnist-*, on Fashion-MNIST         200     Fashion-MNIST (not in the paper;
fashion_mnist-mimonet-10-dynamic,                                               this repository's acceptance runs)
fashion_mnist-wrn-10
=================================  ===================================  ======  ==================================

``--quick`` shrinks any recipe to a CPU smoke test of seconds: a depth-10, width-1 body with a
16-channel stem, 2 epochs, 4 superpositions per batch, the first 64 training and 32 test
examples (``train[:64]`` / ``test[:32]``).
"""

import dataclasses

from keras_mimo.checks import positive_int, positive_number

PAPER_OPTIMIZER = dict(
    lr=0.2,
    weight_decay=1e-5,
    pct_start=0.3,
    div_factor=25.0,
    final_div_factor=1e4,
    base_momentum=0.85,
    max_momentum=0.95,
    gradient_filter=10.0,
    clipnorm=1e3,
)


@dataclasses.dataclass(frozen=True)
class TrainingRecipe:
    """Everything one training run needs; ``keras-mimo train`` flags override single fields."""

    name: str
    dataset: str
    model: str  # a keras_mimo.models registry name
    description: str
    model_overrides: dict = dataclasses.field(default_factory=dict)
    epochs: int = 200
    batch_size: int = 128  # superpositions per batch; batch_size * capacity images
    lr: float = 0.2
    weight_decay: float = 1e-5
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    base_momentum: float = 0.85
    max_momentum: float = 0.95
    mixup_alpha: float = 1.0
    gradient_filter: float | None = 10.0
    clipnorm: float | None = 1e3
    dynamic_p: float | None = None  # dynamic training: P(N = capacity); else N = dynamic_low
    dynamic_low: int = 1
    eval_superpositions: tuple | None = None  # None: (capacity,)
    train_split: str = "train"
    eval_split: str = "test"
    augment: bool = True

    def __post_init__(self):
        # Overrides arrive from the command line: refuse a value that would train nothing, or wrongly,
        # before any run folder is made.
        positive_int("epochs", self.epochs)
        positive_int("batch_size", self.batch_size, hint=" (superpositions per batch)")
        positive_number("lr", self.lr)
        if (
            isinstance(self.mixup_alpha, bool)
            or not isinstance(self.mixup_alpha, (int, float))
            or not self.mixup_alpha >= 0
        ):
            raise ValueError(
                f"mixup_alpha={self.mixup_alpha!r} must be a number >= 0 (0 turns mixup off)."
            )
        if self.dynamic_p is not None and not (
            isinstance(self.dynamic_p, (int, float)) and 0.0 <= self.dynamic_p <= 1.0
        ):
            raise ValueError(
                f"dynamic_p={self.dynamic_p!r} must be a probability in [0, 1] (or None: fixed N)."
            )
        positive_int("dynamic_low", self.dynamic_low)
        if any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1
            for n in self.eval_superpositions or ()
        ):
            raise ValueError(
                f"eval_superpositions={self.eval_superpositions!r} must hold positive integers "
                "(the N to validate at)."
            )

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @property
    def command(self):
        """The command that reproduces this recipe's row (on a GPU: the defaults are the paper's)."""
        return f"keras-mimo train --config {self.name} --output runs/{self.name}"


QUICK_MODEL = dict(depth=10, width=1, initial_width=1)


def quick(recipe):
    """``--quick``: the same recipe on a tiny body, tiny data and 2 epochs, for CPU smoke tests."""
    overrides = dict(recipe.model_overrides)
    overrides.update(QUICK_MODEL)
    return recipe.replace(
        name=recipe.name + "-quick",
        model_overrides=overrides,
        epochs=2,
        batch_size=4,
        train_split=_head(recipe.train_split, 64),
        eval_split=_head(recipe.eval_split, 32),
    )


def _head(split, count):
    return split if "[" in split else f"{split}[:{count}]"


def _cifar_like(dataset, num_classes, title):
    recipes = {}
    extra = {} if num_classes == 10 else {"num_classes": num_classes}
    recipes[f"{dataset}-wrn-28-10"] = TrainingRecipe(
        name=f"{dataset}-wrn-28-10",
        dataset=dataset,
        model="wrn-28-10",
        model_overrides=dict(extra),
        epochs=200,
        description=f"{title}: WideResNet-28-10 baseline (200 epochs).",
    )
    for n in (1, 2, 4):
        recipes[f"{dataset}-mimoconv-28-10-n{n}"] = TrainingRecipe(
            name=f"{dataset}-mimoconv-28-10-n{n}",
            dataset=dataset,
            model=f"mimoconv-28-10-n{n}",
            model_overrides=dict(extra),
            epochs=1200,
            eval_superpositions=(n,),
            description=f"{title}: MIMOConv-28-10 at N = {n} (1200 epochs of {n} passes).",
        )
    if dataset != "svhn":
        recipes[f"{dataset}-mimoconv-28-10-dynamic"] = TrainingRecipe(
            name=f"{dataset}-mimoconv-28-10-dynamic",
            dataset=dataset,
            model="mimoconv-28-10-dynamic",
            model_overrides=dict(extra),
            epochs=1200,
            dynamic_p=0.8,
            dynamic_low=1,
            eval_superpositions=(4, 2, 1),
            description=f"{title}: dynamic MIMOConv-28-10, capacity 4, batches at N = 4 w.p. 0.8 else N = 1; "
            "validated at N = 4, 2, 1.",
        )
    return recipes


def _mnist_like(dataset, title):
    recipes = {}
    for n in (1, 2, 4):
        recipes[f"{dataset}-mimonet-10-n{n}"] = TrainingRecipe(
            name=f"{dataset}-mimonet-10-n{n}",
            dataset=dataset,
            model="mimonet-10-mnist",
            model_overrides=dict(capacity=n),
            epochs=200,
            eval_superpositions=(n,),
            description=f"{title}: MIMONet-10 (one block per stage, width 2, 20x20 centre crops) at N = {n}.",
        )
    recipes[f"{dataset}-mimonet-10-dynamic"] = TrainingRecipe(
        name=f"{dataset}-mimonet-10-dynamic",
        dataset=dataset,
        model="mimonet-10-mnist",
        model_overrides=dict(capacity=4),
        epochs=200,
        dynamic_p=0.8,
        dynamic_low=1,
        eval_superpositions=(4, 2, 1),
        description=f"{title}: dynamic MIMONet-10, capacity 4, 80% of batches at N = 4, 20% at N = 1.",
    )
    recipes[f"{dataset}-wrn-10"] = TrainingRecipe(
        name=f"{dataset}-wrn-10",
        dataset=dataset,
        model="wrn-28-10",
        model_overrides=dict(depth=10, width=2, input_shape=(20, 20, 1)),
        epochs=200,
        description=f"{title}: WideResNet-10-2 baseline (ReLU, 16-channel stem) on 20x20 centre crops.",
    )
    return recipes


RECIPES = {
    **_cifar_like("cifar10", 10, "CIFAR-10"),
    **_cifar_like("cifar100", 100, "CIFAR-100"),
    **_cifar_like("svhn", 10, "SVHN"),
    **_mnist_like("mnist", "MNIST"),
    **_mnist_like("fashion_mnist", "Fashion-MNIST"),
}


def list_recipes():
    return sorted(RECIPES)


def get_recipe(name):
    if isinstance(name, TrainingRecipe):
        return name
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}. Known recipes: {', '.join(list_recipes())}.")
    return RECIPES[name]
