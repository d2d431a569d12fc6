"""Training MIMOFormer and Performer on Long Range Arena with the reference's recipes, through ``model.fit``.

``keras-mimo train --config mimoformer-att-listops`` (any name of
:func:`keras_mimo.models.mimoformer.list_mimoformer_configs`) runs :func:`train_lra`:

* the configuration's model (``keras_mimo.models.create_model(name)``) and its task's recipe
  (``training_recipe(name)``: batch size, steps, warm-up, evaluation cadence, MIMO warm-up);
* ``CyclicAdamW`` (PyTorch AdamW, epsilon 1e-6, weight decay 0) with PyTorch's ``OneCycleLR``
  in linear mode: the learning rate rises linearly from lr / 25 to lr over ``warmup_steps`` and
  falls linearly to lr / 25e4 at ``num_train_steps``, while ``beta_1`` cycles 0.95 -> 0.85 -> 0.95;
* for 'att.' models the MIMO warm-up (:class:`~keras_mimo.models.MIMOWarmup`): the first
  ``mimo_warmup_steps`` steps at grid M/2 x N/2;
* one Keras "epoch" = ``eval_frequency`` steps on the repeated, shuffled training split, then
  validation on ``num_eval_steps`` dev batches (``val_accuracy``), ``log.csv`` (with
  ``train_time``: seconds of training steps only, and ``steps_per_second``), TensorBoard, and
  atomic ``best.keras`` (best dev accuracy) / ``last.keras`` checkpoints;
* rerunning the same command resumes after the last completed evaluation (weights, optimizer
  state, schedule position, MIMO warm-up position); the data order restarts from the seed;
* at the end ``best.keras`` is evaluated on the whole dev and test splits (``results.json``).

Mixed precision: the reference trains in float16 on GPUs. ``mixed_precision="auto"`` does the
same (``mixed_float16``) when Keras sees a GPU and stays in float32 on CPUs, where float16 is slow.

``quick=True`` (``--quick``) shrinks any configuration to a smoke test of seconds: a one-layer,
16-wide model, sequences of at most 64 tokens, 4 steps of 2 bundles, evaluation every 2 steps on 2
batches. For ListOps without ``data_dir`` it first writes a tiny generated ListOps set into the run folder.
"""

import json
import math
import os
import sys
import time

import keras

from keras_mimo.checks import positive_int, positive_number
from keras_mimo.training import callbacks as cb
from keras_mimo.training.loop import (
    _steps_of,
    compile_for_scoring,
    logged_column,
    prepare_run_folder,
    resume_from_last,
    run_folder_callbacks,
)
from keras_mimo.training.optimizers import CyclicAdamW
from keras_mimo.training.precision import global_dtype_policy, gpu_visible, mixed_precision_policy
from keras_mimo.training.schedules import OneCycleLR, OneCycleMomentum

QUICK_MODEL = dict(
    embedding_dim=16, hidden_dim=32, num_heads=2, head_dim=8, num_layers=1, num_random_features=16
)
QUICK_LENGTH = 64
# What each task's loader accepts besides data_dir / batch size / seed.
_LENGTH_TASKS = ("listops", "text", "retrieval")


def is_lra_config(name):
    from keras_mimo.models.mimoformer.configs import MIMOFORMER_CONFIGS

    return name in MIMOFORMER_CONFIGS


def _power_of_two_at_least(n):
    return 1 << max(0, int(n) - 1).bit_length()


def resolve_lra_recipe(
    config,
    *,
    steps=None,
    batch_size=None,
    lr=None,
    warmup_steps=None,
    mimo_warmup_steps=None,
    eval_frequency=None,
    eval_steps=None,
    max_length=None,
    model_overrides=None,
    seed=None,
    grid=None,
    quick=False,
):
    """The recipe of LRA configuration ``config`` with overrides applied, as one JSON-able dict.

    ``steps`` replaces ``num_train_steps`` (rounded up to a whole number of ``eval_frequency``
    blocks); ``max_length`` shortens the sequences of ListOps / Text / Retrieval (data and model);
    ``model_overrides`` replace model constructor arguments; ``grid`` (M, N) sets a MIMOFormer's
    capacity, the grid it trains and is validated at, and its MIMO warm-up's full grid.
    Raises ValueError for bad values.
    """
    from keras_mimo.models.mimoformer.configs import MIMOFORMER_CONFIGS, training_recipe

    recipe = training_recipe(config)
    _, model_kwargs, description = MIMOFORMER_CONFIGS[config]
    model_kwargs = dict(model_kwargs)
    data = dict(recipe.pop("data"))
    if grid is not None:
        grid = _parse_grid(grid)
        if recipe["attention"] == "performer" and grid != (1, 1):
            raise ValueError(
                f"{config} is the Performer baseline, which computes without superposition: "
                f"grid must be 1 x 1, got {grid[0]} x {grid[1]}."
            )
        model_overrides = {**(model_overrides or {}), "capacity": list(grid)}
    if model_overrides and "capacity" in model_overrides and recipe["attention"] != "performer":
        recipe["grid"] = _parse_grid(model_overrides["capacity"])
    grid = tuple(recipe["grid"])
    if quick:
        model_kwargs.update(QUICK_MODEL)
        recipe.update(
            num_train_steps=4,
            eval_frequency=2,
            num_eval_steps=2,
            warmup_steps=1,
            batch_size=2 * grid[0] * grid[1],
            mimo_warmup_steps=min(recipe["mimo_warmup_steps"], 2),
        )
        if recipe["task"] in _LENGTH_TASKS:
            data["max_length"] = QUICK_LENGTH
    for key, value in dict(
        num_train_steps=steps,
        batch_size=batch_size,
        warmup_steps=warmup_steps,
        eval_frequency=eval_frequency,
        num_eval_steps=eval_steps,
    ).items():
        if value is not None:
            recipe[key] = positive_int(key, value)
    if lr is not None:
        recipe["learning_rate"] = positive_number("learning_rate", lr)
    if mimo_warmup_steps is not None:
        if (
            isinstance(mimo_warmup_steps, bool)
            or not isinstance(mimo_warmup_steps, int)
            or mimo_warmup_steps < 0
        ):
            raise ValueError(
                f"mimo_warmup_steps={mimo_warmup_steps!r} must be an integer >= 0 (0: no MIMO warm-up)."
            )
        if recipe["attention"] != "att" and mimo_warmup_steps:
            raise ValueError(
                f"{config} is not an 'att.' model: the MIMO warm-up only applies to mimoformer-att-* "
                "configurations (the reference does it only there)."
            )
        recipe["mimo_warmup_steps"] = int(mimo_warmup_steps)
    if max_length is not None:
        if recipe["task"] not in _LENGTH_TASKS:
            raise ValueError(
                f"max_length only applies to listops, text and retrieval: {recipe['task']} sequences are "
                "images of fixed size."
            )
        data["max_length"] = positive_int("max_length", max_length)
    if "max_length" in data:
        model_kwargs["max_length"] = _power_of_two_at_least(data["max_length"])
    model_kwargs.update(model_overrides or {})
    frequency = int(recipe["eval_frequency"])
    blocks = math.ceil(int(recipe["num_train_steps"]) / frequency)
    sequences = int(recipe["batch_size"])
    if sequences % (grid[0] * grid[1]):
        raise ValueError(
            f"batch_size={sequences} sequences is not a multiple of the grid {grid[0]} x {grid[1]}: "
            f"use a multiple of {grid[0] * grid[1]}."
        )
    if recipe["warmup_steps"] >= blocks * frequency:
        raise ValueError(
            f"warmup_steps={recipe['warmup_steps']} must be below the number of steps "
            f"({blocks * frequency})."
        )
    recipe.update(
        name=config + ("-quick" if quick else ""),
        config=config,
        description=description,
        num_train_steps=blocks * frequency,
        epochs=blocks,
        model_kwargs=model_kwargs,
        data=data,
        batch_bundles=sequences // (grid[0] * grid[1]),
        seed=recipe["seed"] if seed is None else int(seed),
    )
    return json.loads(json.dumps(recipe))  # tuples become lists, as in the run's config.json


def _parse_grid(value):
    """(M, N) from a pair or from 'MxN' / 'M,N'."""
    parts = value.lower().replace(",", "x").split("x") if isinstance(value, str) else value
    try:
        grid = tuple(int(v) for v in parts)
    except (TypeError, ValueError):
        grid = ()
    if len(grid) != 2 or min(grid) < 1:
        raise ValueError(f"grid={value!r} must be two positive integers M x N, e.g. 2x2.")
    return grid


def lra_datasets(recipe, data_dir):
    """(train, dev-for-validation, dev, test) tf.data pipelines of the recipe's task: batches of ``batch_size`` sequences."""
    from keras_mimo.data.lra import lra_dataset

    task, data = recipe["task"], dict(recipe["data"])
    data["data_dir"] = data_dir
    common = dict(batch_size=int(recipe["batch_size"]), grid=1, seed=int(recipe["seed"]), **data)
    train = lra_dataset(task, "train", repeat=True, **common)
    dev, test = (
        _with_known_length(lra_dataset(task, split, **common)) for split in ("dev", "test")
    )
    validation = dev.take(min(int(recipe["num_eval_steps"]), int(dev.cardinality())))
    return train, validation, dev, test


def _with_known_length(dataset):
    # CSV / file pipelines have unknown cardinality; counting the batches once lets Keras know where an
    # evaluation ends (no "ran out of data" warnings, exact progress bars).
    import tensorflow as tf

    return dataset.apply(tf.data.experimental.assert_cardinality(_steps_of(dataset)))


def _quick_listops_dir(output_dir):
    from keras_mimo.data.lra import write_listops_splits

    folder = os.path.join(output_dir, "listops-quick-data")
    if not os.path.exists(os.path.join(folder, "basic_test.tsv")):
        write_listops_splits(
            folder,
            num_train=64,
            num_dev=16,
            num_test=16,
            min_length=10,
            max_length=QUICK_LENGTH,
            seed=0,
        )
    return folder


class TrainTimer(keras.callbacks.Callback):
    """Logs ``train_time`` (seconds of the epoch's training steps, before validation) and ``steps_per_second``.

    Must come first in the callback list, so that validation callbacks run after it.
    """

    def __init__(self, steps_per_epoch):
        super().__init__()
        self.steps_per_epoch = int(steps_per_epoch)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            elapsed = time.perf_counter() - self._start
            logs["train_time"] = elapsed
            logs["steps_per_second"] = (
                self.steps_per_epoch / elapsed if elapsed > 0 else float("nan")
            )


def train_lra(
    config,
    output_dir,
    *,
    data_dir=None,
    verbose="auto",
    tensorboard=True,
    jit_compile="auto",
    mixed_precision="auto",
    quick=False,
    extra_callbacks=(),
    **overrides,
):
    """Trains LRA configuration ``config`` into ``output_dir`` (resuming a run there); returns the results dict.

    ``overrides`` are those of :func:`resolve_lra_recipe` (steps, batch_size, lr, warmup_steps,
    mimo_warmup_steps, eval_frequency, eval_steps, max_length, model_overrides, seed).
    """
    recipe = resolve_lra_recipe(config, quick=quick, **overrides)
    if quick and recipe["task"] == "listops" and data_dir is None:
        data_dir = _quick_listops_dir(os.path.abspath(os.fspath(output_dir)))
    policy = mixed_precision_policy(
        mixed_precision, auto_policy="mixed_float16" if gpu_visible() else None
    )
    run_config = dict(recipe, mixed_precision=policy or "float32")
    run_config.pop("command", None)
    output_dir = prepare_run_folder(output_dir, run_config)
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2

    keras.utils.set_random_seed(recipe["seed"])
    with global_dtype_policy(policy):
        return _train(
            recipe, output_dir, data_dir, verbose, tensorboard, jit_compile, extra_callbacks
        )


def _train(recipe, output_dir, data_dir, verbose, tensorboard, jit_compile, extra_callbacks):
    from keras_mimo.models import create_model
    from keras_mimo.models.mimoformer import MIMOWarmup

    model = create_model(recipe["config"], seed=recipe["seed"], **recipe["model_kwargs"])
    train_data, validation_data, dev_data, test_data = lra_datasets(recipe, data_dir)
    steps, total_steps = int(recipe["eval_frequency"]), int(recipe["num_train_steps"])
    pct_start = recipe["warmup_steps"] / total_steps
    lr = OneCycleLR(
        recipe["learning_rate"],
        total_steps,
        pct_start,
        recipe["div_factor"],
        recipe["final_div_factor"],
        anneal_strategy="linear",
    )
    beta_1 = OneCycleMomentum(
        total_steps,
        pct_start,
        base_momentum=min(recipe["cycle_beta_1"]),
        max_momentum=max(recipe["cycle_beta_1"]),
        anneal_strategy="linear",
    )
    optimizer = CyclicAdamW(
        lr,
        weight_decay=recipe["weight_decay"],
        beta_1=beta_1,
        beta_2=recipe["beta_2"],
        epsilon=recipe["epsilon"],
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy("accuracy")],
        jit_compile=jit_compile,
    )
    initial_epoch = resume_from_last(model, output_dir, steps, total_steps, recipe["name"], verbose)

    callbacks = [TrainTimer(steps)]
    if recipe["mimo_warmup_steps"]:
        warmup = MIMOWarmup(int(recipe["mimo_warmup_steps"]), full_grid=tuple(recipe["grid"]))
        warmup.steps_done = initial_epoch * steps
        callbacks.append(warmup)
    callbacks += [
        cb.ScheduleLogger(),
        cb.MultiSuperpositionValidation(validation_data, [tuple(recipe["grid"])], attribute="grid"),
        *extra_callbacks,
        *run_folder_callbacks(output_dir, tensorboard),
    ]
    if verbose:
        m, n = recipe["grid"]
        changed = _changed_model_arguments(recipe)
        print(
            f"{recipe['name']}: {recipe['description']}"
            + (f"\n  changed from the configuration: {changed}" if changed else "")
            + f"\n  {model.count_params():,} parameters, grid {m} x {n}, "
            f"{recipe['batch_size']} sequences ({recipe['batch_bundles']} bundles) per step, {total_steps} steps "
            f"({recipe['epochs']} evaluations every {steps} steps), MIMO warm-up {recipe['mimo_warmup_steps']} steps; "
            f"output {output_dir}",
            flush=True,
        )
    if initial_epoch < recipe["epochs"]:
        model.fit(
            train_data,
            epochs=recipe["epochs"],
            steps_per_epoch=steps,
            initial_epoch=initial_epoch,
            shuffle=False,
            callbacks=callbacks,
            verbose=verbose,
        )
    return _final_results(recipe, output_dir, dev_data, test_data, verbose)


def _changed_model_arguments(recipe):
    from keras_mimo.models.mimoformer.configs import MIMOFORMER_CONFIGS

    original = json.loads(json.dumps(MIMOFORMER_CONFIGS[recipe["config"]][1]))
    return ", ".join(
        f"{k}={v}" for k, v in sorted(recipe["model_kwargs"].items()) if original.get(k) != v
    )


def _final_results(recipe, output_dir, dev_data, test_data, verbose):
    best = keras.saving.load_model(os.path.join(output_dir, "best.keras"), compile=False)
    best.grid = tuple(
        recipe["grid"]
    )  # a checkpoint written during the MIMO warm-up holds the half grid
    compile_for_scoring(best)
    scores = {}
    for split, data in (("dev", dev_data), ("test", test_data)):
        metrics = best.evaluate(data, verbose=0, return_dict=True)
        scores[split] = {"accuracy": float(metrics["accuracy"]), "loss": float(metrics["loss"])}
    train_times = logged_column(output_dir, "train_time")
    train_time, evaluations = sum(train_times), len(train_times)
    rates = sorted(
        logged_column(output_dir, "steps_per_second")[1:]
    )  # the first block includes compilation
    wall_time = sum(logged_column(output_dir, "epoch_time"))
    steps = evaluations * int(recipe["eval_frequency"])
    state = cb.read_state(output_dir)
    results = dict(
        recipe=recipe["name"],
        config=recipe["config"],
        task=recipe["task"],
        grid=list(recipe["grid"]),
        steps=steps,
        train_time_s=round(train_time, 1),
        wall_time_s=round(wall_time, 1),
        steps_per_second=round(steps / train_time, 3) if train_time else None,
        sequences_per_second=round(steps * int(recipe["batch_size"]) / train_time, 1)
        if train_time
        else None,
        median_steps_per_second_after_first_block=round(rates[len(rates) // 2], 3)
        if rates
        else None,
        best_dev_step=None
        if not state or state.get("best_epoch") is None
        else (int(state["best_epoch"]) + 1) * int(recipe["eval_frequency"]),
        dev=scores["dev"],
        test=scores["test"],
        parameters=int(best.count_params()),
    )
    cb.write_json_atomic(os.path.join(output_dir, "results.json"), results)
    if verbose:
        print(
            f"{recipe['name']}: best dev checkpoint (step {results['best_dev_step']}): dev accuracy "
            f"{100 * scores['dev']['accuracy']:.2f}%, test accuracy {100 * scores['test']['accuracy']:.2f}%; "
            f"{results['steps_per_second']} steps/s over {steps} steps",
            flush=True,
        )
    return results


def evaluate_lra(
    checkpoint, task, grids=None, *, data_dir=None, batch_size=128, split="test", data_options=None
):
    """Accuracy and loss of a saved MIMOFormer / Performer on ``split`` of LRA ``task`` at each grid.

    Returns ``{"MxN": {"accuracy", "loss"}}``. The data options (sequence length, pixel token
    offset...) come from the ``config.json`` of the run folder holding ``checkpoint`` when there is
    one, so the model sees sequences exactly as in training; ``data_options`` overrides them.
    """
    import keras_mimo.models  # noqa: F401  (registers the model classes)
    from keras_mimo.data.lra import lra_dataset

    model = keras.saving.load_model(checkpoint, compile=False)
    if not hasattr(model, "grid"):
        raise ValueError(
            f"{checkpoint} holds a {type(model).__name__}, not a MIMOFormer or Performer: "
            "use an image dataset name for MIMOConv checkpoints."
        )
    options = {}
    run_config = os.path.join(
        os.path.dirname(os.path.abspath(os.fspath(checkpoint))), "config.json"
    )
    if os.path.exists(run_config):
        with open(run_config) as stream:
            saved = json.load(stream)
        if saved.get("task") not in (None, task):
            raise ValueError(f"{checkpoint} was trained on LRA {saved['task']}, not {task}.")
        options.update(saved.get("data") or {})
    elif task in _LENGTH_TASKS:
        options["max_length"] = model.max_length
    options.update(data_options or {})
    grids = [tuple(model.capacity)] if not grids else [_parse_grid(g) for g in grids]
    data = _with_known_length(
        lra_dataset(task, split, data_dir=data_dir, batch_size=int(batch_size), grid=1, **options)
    )
    compile_for_scoring(model)
    results = {}
    for grid in grids:
        model.grid = grid
        metrics = model.evaluate(data, verbose=0, return_dict=True)
        results["%dx%d" % grid] = {
            "accuracy": float(metrics["accuracy"]),
            "loss": float(metrics["loss"]),
        }
    return results
