"""Does a preset pay? Fine-tuning it against training the same architecture from scratch.

``compare_finetuning`` runs the fine-tuning path a user takes, ``from_preset(name,
num_classes=k)`` then ``model.fit``, for a fixed budget of updates on raw examples of another
dataset, and trains the same architecture from random weights (same preprocessing, optimizer,
batches and budget); both are then scored at every N. Each picks its own Adam learning rate
from a small grid by accuracy on a validation slice held out of the training examples (a
pretrained body wants a larger step than a fresh one on a short budget), and only the chosen
run is scored on the test examples. A dynamic preset is fine-tuned
dynamically (each batch at N = capacity with probability 0.8, else N = 1, as it was trained),
so it keeps serving every N.

``python -m keras_mimo.presets.finetune`` writes the comparison to ``zoo/finetuning.csv``.
"""

import argparse
import csv
import os

import numpy as np

LEARNING_RATES = (1e-2, 3e-3, 1e-3)
VALIDATION_EXAMPLES = 5000


def _train_examples(images, labels, steps, batch_size, seed):
    """``steps * batch_size`` examples: shuffled passes over the data, as many as needed."""
    rng = np.random.default_rng(seed)
    needed = steps * batch_size
    order = np.concatenate([rng.permutation(len(labels)) for _ in range(-(-needed // len(labels)))])
    chosen = order[:needed]
    return images[chosen], labels[chosen]


def finetune(model, images, labels, *, steps, batch_size, dynamic, seed=0, lr=1e-3):
    """``steps`` Adam updates of ``model`` on ``batch_size`` raw examples each, at N = capacity
    (``dynamic``: at N = 1 for a fifth of the batches); returns the model."""
    import keras

    from keras_mimo.training.callbacks import DynamicSuperposition

    keras.utils.set_random_seed(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x, y = _train_examples(images, labels, steps, batch_size, seed)
    callbacks = []
    model.superposition = model.capacity
    if dynamic and model.capacity > 1:
        callbacks.append(DynamicSuperposition(model.capacity, low=1, p=0.8, seed=seed))
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, callbacks=callbacks, verbose=0)
    return model


def compare_finetuning(
    preset,
    images,
    labels,
    test_images,
    test_labels,
    *,
    num_classes,
    steps,
    batch_size,
    learning_rates=LEARNING_RATES,
    validation=VALIDATION_EXAMPLES,
    seed=0,
):
    """``{"finetuned": {N: %}, "scratch": {N: %}, "lr": {kind: chosen}}`` after ``steps``
    updates each; the last ``validation`` training examples choose the learning rate."""
    from keras_mimo.presets.api import from_preset, preset_metadata
    from keras_mimo.presets.zoo import accuracy_per_point, operating_points

    if not 0 < validation < len(labels):
        raise ValueError(f"validation={validation} must leave training examples of {len(labels)}.")
    train_x, train_y = images[:-validation], labels[:-validation]
    dev_x, dev_y = images[-validation:], labels[-validation:]
    dynamic = "dynamic" in preset_metadata(preset).get("trained_as", "")
    results = {"lr": {}}
    for kind, weights in (("finetuned", True), ("scratch", False)):
        best = None
        for lr in learning_rates:
            model = from_preset(
                preset, num_classes=num_classes, load_weights=weights, compile=False
            )
            finetune(
                model,
                train_x,
                train_y,
                steps=steps,
                batch_size=batch_size,
                dynamic=dynamic,
                seed=seed,
                lr=lr,
            )
            points = operating_points(model)
            dev = accuracy_per_point(model, dev_x, dev_y, points)
            score = sum(dev.values())
            if best is None or score > best[0]:
                best = (score, lr, model, points)
        _, lr, model, points = best
        results["lr"][kind] = lr
        results[kind] = accuracy_per_point(model, test_images, test_labels, points)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mimoconv-10-2.fashion-mnist-dynamic")
    parser.add_argument("--dataset", default="mnist", help="dataset to fine-tune on")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=256, help="images per update")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="CSV (default zoo/finetuning.csv)")
    args = parser.parse_args(argv)

    from keras_mimo.presets.registry import zoo_root
    from keras_mimo.presets.zoo import full_test_split
    from keras_mimo.registry import get_dataset

    info = get_dataset(args.dataset)
    train = full_test_split(info.name, split="train")
    test = full_test_split(info.name, split="test")
    results = compare_finetuning(
        args.preset,
        *train,
        *test,
        num_classes=info.num_classes,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    output = args.output or os.path.join(zoo_root(), "finetuning.csv")
    command = (
        f"python -m keras_mimo.presets.finetune --preset {args.preset} --dataset {info.name} "
        f"--steps {args.steps} --batch-size {args.batch_size} --seed {args.seed}"
    )
    rows = [
        {
            "preset": args.preset,
            "target": info.name,
            "updates": args.steps,
            "images_per_update": args.batch_size,
            "N": point,
            "finetuned_test_accuracy": results["finetuned"][point],
            "scratch_test_accuracy": results["scratch"][point],
            "finetuned_lr": results["lr"]["finetuned"],
            "scratch_lr": results["lr"]["scratch"],
            "command": f"`{command}`",
        }
        for point in results["finetuned"]
    ]
    with open(output, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
