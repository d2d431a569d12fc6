"""Where a MIMOConv-10-2 training step spends its time on this CPU: one model variant per line.

Each line is the mean wall time of one ``train_on_batch`` (SGD, cross-entropy, random
20x20 images) after 5 warm-up steps, for 32 superpositions (32 * N images) or 32 images
for the WideResNet (``--superpositions`` changes the 32). Variants switch off one ingredient at
a time, so the differences show what each one costs. Usage:
``KERAS_BACKEND=tensorflow python docs/results/train_step_cost.py [--width 4]
[--dtype-policy mixed_bfloat16] [--superpositions 64] [--steps 40]`` (``--width`` widens every
model's body).
"""

import argparse
import time

import keras
import numpy as np

from keras_mimo.checks import positive_int
from keras_mimo.models import create_model
from keras_mimo.training.recipes import get_recipe

WIDTH = {}  # --width: {"width": W} for every model


def recipe_model(recipe, **changes):
    """The model the Fashion-MNIST recipe trains, with one ingredient changed."""
    recipe = get_recipe(recipe)
    arguments = {"input_shape": (20, 20, 1), **recipe.model_overrides, "seed": 1, **WIDTH}
    return create_model(recipe.architecture, **{**arguments, **changes})


MIMONET = "mimoconv-10-2.fashion-mnist-n4"
VARIANTS = [  # name, model
    ("WRN-10 baseline (S images)", lambda: recipe_model("wrn-10-2.fashion-mnist")),
    ("MIMOConv-10-2 N=4 (S x 4 images)", lambda: recipe_model(MIMONET)),
    (
        "  without the isometry regulariser",
        lambda: recipe_model(MIMONET, isometry_regularization=0.0),
    ),
    ("  isometry on every 4th step (x4, lazy)", lambda: LazyModel(recipe_model(MIMONET), every=4)),
    ("  ReLU instead of PReLU", lambda: recipe_model(MIMONET, activation="relu")),
    ("  no binding (plain sum)", lambda: recipe_model(MIMONET, binding="none")),
    ("  16-channel stem instead of 64", lambda: recipe_model(MIMONET, initial_width=1)),
    ("MIMOConv-10-2 N=1 (S images)", lambda: recipe_model("mimoconv-10-2.fashion-mnist-n1")),
    ("MIMOConv-10-2 N=2 (S x 2 images)", lambda: recipe_model("mimoconv-10-2.fashion-mnist-n2")),
    (
        "  isometry on every 4th step (x4, lazy)",
        lambda: LazyModel(recipe_model("mimoconv-10-2.fashion-mnist-n2"), every=4),
    ),
    (
        "  without the isometry regulariser",
        lambda: recipe_model("mimoconv-10-2.fashion-mnist-n2", isometry_regularization=0.0),
    ),
]


class LazyModel:
    """A model whose steps put the isometry penalty on every ``every``-th step only.

    As ``keras-mimo train --isometry-every`` does.
    """

    def __init__(self, model, every):
        self.model, self.every, self.steps = model, every, 0

    def before_step(self):
        self.model.isometry_scale = float(self.every) if self.steps % self.every == 0 else 0.0
        self.steps += 1


def step_time(model, superpositions=32, steps=40, warmup=5):
    lazy = model if isinstance(model, LazyModel) else None
    model = lazy.model if lazy else model
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy"
    )
    images = superpositions * model.capacity
    rng = np.random.default_rng(0)
    x = rng.random((images,) + model.image_shape, dtype="float32")
    y = rng.integers(0, 10, images)

    def step():
        if lazy:
            lazy.before_step()
        model.train_on_batch(x, y)

    for _ in range(
        max(warmup, 2 * lazy.every if lazy else 0)
    ):  # every compiled step traced before timing
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def positive(text):
    """argparse type: a positive integer, or an error that says so."""
    try:
        return positive_int("value", int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer") from None


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=positive, help="body width of every model (recipes: 2)")
    parser.add_argument(
        "--dtype-policy", default="float32", help="Keras dtype policy, e.g. mixed_bfloat16"
    )
    parser.add_argument(
        "--steps", type=positive, default=40, help="timed steps per line (after 5 warm-up steps)"
    )
    parser.add_argument(
        "--superpositions", type=positive, default=32, help="superpositions (WRN: images) per step"
    )
    args = parser.parse_args()
    WIDTH.update({"width": args.width} if args.width else {})
    keras.config.set_dtype_policy(args.dtype_policy)
    print(
        f"backend {keras.backend.backend()}, width {args.width or 'as the recipes'}, "
        f"{args.dtype_policy}, S = {args.superpositions} superpositions per step"
    )
    for name, build in VARIANTS:
        seconds = step_time(build(), superpositions=args.superpositions, steps=args.steps)
        print(f"{name:40s} {1000 * seconds:7.1f} ms per step", flush=True)
