"""Collects the results.json of finished runs into a CSV file of docs/results/.

Usage:
    python docs/results/collect.py fashion_mnist RUNS [STUDY]
        image runs (docs/results/run_fashion_mnist.sh): one row per model and N, added to
        fashion_mnist.csv under STUDY (default: the name of the RUNS folder); rows of the same
        runs collected before are replaced
    python docs/results/collect.py listops RUNS [OUT]
        LRA runs (docs/results/run_listops.sh): one row per run, written to OUT (default
        listops.csv)
"""

import csv
import json
import pathlib
import shlex
import sys

from keras_mimo.registry import get_architecture
from keras_mimo.training.recipes import get_recipe


def image_rows(runs, result, config, folder, study):
    recipe = get_recipe(result["recipe"])
    flags = [f"--epochs {config['epochs']}"]
    flags += (
        [f"--batch-size {config['batch_size']}"]
        if config["batch_size"] != recipe.batch_size
        else []
    )
    flags += [f"--lr {config['lr']:g}"] if config["lr"] != recipe.lr else []
    flags += (
        [f"--mixup-alpha {config['mixup_alpha']:g}"]
        if config["mixup_alpha"] != recipe.mixup_alpha
        else []
    )
    # Compare through JSON, where the recipe's tuples and the saved config's lists agree.
    for key, value in sorted(config["model_overrides"].items()):
        if json.loads(json.dumps(recipe.model_overrides.get(key))) != value:
            flags.append(
                "--model-override "
                + shlex.quote(f"{key}={json.dumps(value, separators=(',', ':'))}")
            )
    precision = config.get("mixed_precision", "float32")  # recorded only when not float32
    flags += (
        [f"--mixed-precision {precision.removeprefix('mixed_')}"] if precision != "float32" else []
    )
    flags += (
        [f"--isometry-every {config['isometry_every']}"]
        if config.get("isometry_every", 1) > 1
        else []
    )
    command = (
        f"keras-mimo train --recipe {result['recipe']} {' '.join(flags)} "
        f"--output runs/{runs.name}/{folder.name}"
    )
    for n, accuracy in result["accuracy"].items():
        yield dict(
            study=study,
            recipe=result["recipe"],
            recipe_as_run=result["recipe"],
            model=config.get("architecture", config.get("model")),
            model_overrides=json.dumps(config["model_overrides"]),
            trained_as="dynamic p=%s" % config["dynamic_p"] if config["dynamic_p"] else "fixed",
            eval_n=n,
            test_accuracy=round(100 * accuracy, 2),
            test_loss=round(result["loss"][n], 4),
            epochs=result["epochs"],
            batch_superpositions=config["batch_size"],
            lr=config["lr"],
            mixup_alpha=config["mixup_alpha"],
            precision=precision,
            train_time_s=result["train_time_s"],
            command=command,
        )


def lra_rows(runs, result, config, folder, study):
    architecture = get_architecture(config["architecture"])
    model = {**architecture.arguments, **config["model_overrides"]}
    recipe = result["recipe"]
    yield dict(
        config=config["architecture"],
        recipe=recipe,
        attention=architecture.facts["attention"],
        grid="%dx%d" % tuple(result["grid"]),
        dev_accuracy=round(100 * result["dev"]["accuracy"], 2),
        test_accuracy=round(100 * result["test"]["accuracy"], 2),
        best_dev_step=result["best_dev_step"],
        steps=result["steps"],
        steps_per_second=result["steps_per_second"],
        median_steps_per_second_after_first_block=result[
            "median_steps_per_second_after_first_block"
        ],
        sequences_per_second=result["sequences_per_second"],
        train_time_s=result["train_time_s"],
        wall_time_s=result["wall_time_s"],
        parameters=result["parameters"],
        max_length=config["data_options"]["max_length"],
        batch_sequences=config["batch_size"],
        lr=config["lr"],
        warmup_steps=config["warmup_steps"],
        mimo_warmup_steps=config["mimo_warmup_steps"],
        model="emb %d, hidden %d, %d heads x %d, %d layers, R %d"
        % (
            model["embedding_dim"],
            model["hidden_dim"],
            model["num_heads"],
            model["head_dim"],
            model["num_layers"],
            model["num_random_features"],
        ),
        command=f"bash docs/results/run_listops.sh {recipe.removesuffix('-quick')}",
    )


KINDS = {"fashion_mnist": image_rows, "listops": lra_rows}


def merged_into(out, rows):
    """The rows of ``out`` (a CSV of several studies) plus ``rows``, which replace their old copies.

    A row is the same run's when its study and command (which names the run folder) match.
    """
    if not out.exists():
        return rows
    new = {(row["study"], row["command"]) for row in rows}
    with open(out, newline="") as stream:
        kept = [row for row in csv.DictReader(stream) if (row["study"], row["command"]) not in new]
    return kept + rows


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in KINDS:
        raise SystemExit(__doc__)
    kind, runs = sys.argv[1], pathlib.Path(sys.argv[2])
    last = sys.argv[3] if len(sys.argv) > 3 else None
    study = (last or runs.name) if kind == "fashion_mnist" else None
    rows = []
    for path in sorted(runs.glob("*/results.json")):
        config = json.loads((path.parent / "config.json").read_text())
        rows.extend(KINDS[kind](runs, json.loads(path.read_text()), config, path.parent, study))
    if not rows:
        raise SystemExit(f"no finished run (*/results.json) in {runs}")
    here = pathlib.Path(__file__).parent
    if kind == "fashion_mnist":
        out = here / "fashion_mnist.csv"
        rows = merged_into(out, rows)
    else:
        out = here / (last or "listops.csv")
    with open(out, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[-1]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(out.read_text())
