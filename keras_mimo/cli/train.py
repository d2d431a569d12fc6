"""``keras-mimo train``: a named recipe through the one run loop (resumable).

Every flag is checked, and the recipe resolved, before Keras or TensorFlow is imported; a
mistake raises ValueError, which the command line prints as one line (exit status 2).
"""

import json
import os

from keras_mimo.cli.common import parse_int_list
from keras_mimo.training.precision import MODES

# Flags that only the image (MIMOConv) recipes or only the LRA (MIMOFormer) recipes understand.
IMAGE_ONLY = (
    "epochs",
    "mixup_alpha",
    "train_split",
    "eval_split",
    "superpositions",
    "steps_per_epoch",
    "data_parallel",
    "isometry_every",
    "dynamic_p",
    "dynamic_low",
    "no_augment",
)
LRA_ONLY = (
    "steps",
    "grid",
    "warmup_steps",
    "mimo_warmup_steps",
    "eval_frequency",
    "eval_steps",
    "max_length",
)


def add_arguments(parser):
    add = parser.add_argument
    add("--recipe", help="recipe name, ARCHITECTURE.DATASET[-REGIME] (--list shows them all)")
    add("--list", action="store_true", help="list the recipes and exit")
    add("--output", help="run folder; rerunning into it resumes (default runs/RECIPE)")
    add("--epochs", type=int, help="image: epochs (one epoch = N passes at capacity N)")
    add(
        "--batch-size",
        type=int,
        help="image: superpositions per batch (images = this x capacity); LRA: sequences per step",
    )
    add("--lr", type=float, help="peak learning rate of the one-cycle schedule")
    add("--steps", type=int, help="LRA: optimizer steps in all")
    add("--grid", help="LRA MIMOFormer: the M x N grid to train at, e.g. 2x2")
    add("--warmup-steps", type=int, help="LRA: linear learning-rate warm-up steps")
    add("--mimo-warmup-steps", type=int, help="LRA 'att.': steps at the half grid first (0: none)")
    add("--eval-frequency", type=int, help="LRA: steps between evaluations on the dev split")
    add("--eval-steps", type=int, help="LRA: dev batches per evaluation")
    add("--max-length", type=int, help="LRA ListOps/Text/Retrieval: sequence length")
    add(
        "--mixed-precision",
        choices=MODES,
        help="auto: the reference's (LRA float16 on a GPU, else float32); image recipes take off "
        "or bfloat16 (2-4x faster convolutions on CPUs with AMX)",
    )
    add("--mixup-alpha", type=float, help="image: mixup alpha (paper 1.0; 0 turns mixup off)")
    add("--train-split", help="image: training split, e.g. 'train' or 'train[:10000]'")
    add("--eval-split", help="image: validation/test split, e.g. 'test'")
    add("--superpositions", help="image: comma-separated N to validate at (default: the recipe's)")
    add("--steps-per-epoch", type=int, help="image: cap on updates per epoch")
    add(
        "--no-augment",
        action="store_true",
        help="image: no random flips or crops (digits are not mirror-symmetric)",
    )
    add(
        "--dynamic-p",
        type=float,
        help="image, dynamic recipes: probability of a batch at N = capacity (paper 0.8)",
    )
    add(
        "--dynamic-low",
        type=int,
        help="image, dynamic recipes: N of the other batches (paper 1; must divide the capacity)",
    )
    add(
        "--isometry-every",
        type=int,
        metavar="K",
        help="image: the isometry penalty on every K-th update only, weighted K (default 1)",
    )
    add(
        "--model-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model constructor argument, e.g. width=1 (repeatable; VALUE is JSON)",
    )
    add("--data-dir", help="folder with the data (IDX files, LRA files or a tfds data_dir)")
    add("--seed", type=int, help="random seed (default: the recipe's: 0, LRA 1234)")
    add("--quick", action="store_true", help="tiny model, tiny data, a few steps: a CPU smoke test")
    add(
        "--data-parallel",
        action="store_true",
        help="image: train on all local devices (JAX DataParallel / TF MirroredStrategy)",
    )
    add("--no-tensorboard", action="store_true")
    add(
        "--jit-compile",
        choices=("auto", "on", "off"),
        default="auto",
        help="XLA / jit compilation of the train step (auto: Keras' default for the backend)",
    )
    add(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=None,
        help="0 silent, 1 progress bar, 2 one line per epoch (default: 1 on a terminal, else 2)",
    )
    add(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        help="Keras backend (default: KERAS_BACKEND)",
    )


def print_recipes():
    from keras_mimo.training.recipes import RECIPES

    for name in sorted(RECIPES):
        recipe = RECIPES[name]
        print(f"{name:44s} {recipe.description}")


def model_overrides(items):
    """``{key: value}`` of ``--model-override KEY=VALUE`` flags (VALUE in JSON)."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--model-override {item!r} must look like KEY=VALUE (VALUE in JSON).")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(
                f"--model-override {item!r}: VALUE must be JSON, e.g. width=1, "
                'pooling="mean" (quote strings).'
            ) from None
    return overrides


def check_model_overrides(recipe):
    """A ValueError for an override the architecture's class does not take (Keras is imported)."""
    import inspect

    from keras_mimo.registry import closest_matches, get_architecture

    cls = get_architecture(recipe.architecture).model_class()
    parameters = set(inspect.signature(cls).parameters) - {"kwargs", "self"}
    for key in recipe.model_overrides:
        if key not in parameters:
            near = closest_matches(key, parameters)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise ValueError(
                f"--model-override {key}=...: {cls.__name__} has no argument {key!r}.{hint}"
            )


def recipe_arguments(args):
    """The recipe and ``train()`` keyword arguments of the parsed flags; ValueError for mistakes."""
    from keras_mimo.training.recipes import get_recipe, resolve_recipe

    recipe = get_recipe(args.recipe)
    image = recipe.family == "image"
    foreign = LRA_ONLY if image else IMAGE_ONLY
    given = [name for name in foreign if getattr(args, name) not in (None, False)]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        what = "an image recipe" if image else "a Long Range Arena recipe"
        why = (
            "they apply to the Long Range Arena recipes (mimoformer-*, performer-*)"
            if image
            else "use --steps for the length of the run; the other flags apply to image recipes"
        )
        raise ValueError(f"{flags} cannot be used with {args.recipe}, {what}: {why}.")
    if image and args.dynamic_low is not None and args.dynamic_p is None and not recipe.dynamic_p:
        raise ValueError(
            f"--dynamic-low applies to dynamic training, which {recipe.name} is not: add "
            "--dynamic-p P or use a -dynamic recipe."
        )
    if image and args.dynamic_p is not None and not 0.0 <= args.dynamic_p <= 1.0:
        raise ValueError(f"--dynamic-p {args.dynamic_p} must be a probability (0 to 1).")
    changes = dict(
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        model_overrides=model_overrides(args.model_override) or None,
    )
    if image:
        changes.update(
            epochs=args.epochs,
            mixup_alpha=args.mixup_alpha,
            train_split=args.train_split,
            eval_split=args.eval_split,
            dynamic_p=args.dynamic_p,
            dynamic_low=args.dynamic_low,
            augment=False if args.no_augment else None,
        )
        if args.superpositions:
            changes["eval_superpositions"] = tuple(
                parse_int_list(args.superpositions, "--superpositions", "4,2,1")
            )
    else:
        changes.update(
            steps=args.steps,
            warmup_steps=args.warmup_steps,
            mimo_warmup_steps=args.mimo_warmup_steps,
            eval_frequency=args.eval_frequency,
            eval_steps=args.eval_steps,
            grid=args.grid,
            max_length=args.max_length,
        )
    resolved = resolve_recipe(args.recipe, quick=args.quick, **changes)
    options = dict(
        quick=args.quick,
        data_dir=args.data_dir,
        verbose="auto" if args.verbose is None else args.verbose,
        tensorboard=not args.no_tensorboard,
        mixed_precision=args.mixed_precision or "auto",
        jit_compile={"auto": "auto", "on": True, "off": False}[args.jit_compile],
        **{k: v for k, v in changes.items() if v is not None},
    )
    if image:
        options.update(
            data_parallel=args.data_parallel,
            isometry_every=1 if args.isometry_every is None else args.isometry_every,
            steps_per_epoch=args.steps_per_epoch,
        )
    return resolved, options


def run(args):
    if args.list:
        print_recipes()
        return 0
    if not args.recipe:
        raise ValueError("--recipe NAME is required (keras-mimo train --list shows the recipes).")
    recipe, options = recipe_arguments(args)  # every mistake so far is found without Keras
    if getattr(args, "backend", None):
        os.environ["KERAS_BACKEND"] = args.backend
    check_model_overrides(recipe)
    from keras_mimo.training import train

    output = args.output or os.path.join("runs", recipe.name)
    train(args.recipe, output, **options)
    return 0
