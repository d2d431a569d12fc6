"""``train`` and ``evaluate``: a recipe through ``model.fit`` with logs, checkpoints and resume; a checkpoint at several N.

Output folder of a run (``output_dir``):

* ``config.json``: the resolved recipe and seed (a rerun must match it to resume);
* ``last.keras`` (every epoch) and ``best.keras`` (best ``val_accuracy`` at the recipe's first
  validation N), full Keras files written atomically (temporary file + ``os.replace``);
* ``state.json``: last completed epoch, best value; ``log.csv``: one row per epoch (loss,
  accuracy, ``val_accuracy_n{N}`` / ``val_loss_n{N}`` for each N, ``skipped_updates``,
  ``learning_rate``, ``momentum``, ``epoch_time``...); ``tensorboard/``: the same as TensorBoard events;
* ``results.json``: the final evaluation of ``last.keras`` at each N, and the total train time.

Rerunning the same command after a crash or SIGKILL resumes after the last completed epoch:
weights, optimizer state (momentum buffers, step counter, so the same one-cycle position, and
the gradient filter's state) come back from ``last.keras``; rows of unfinished epochs are
dropped from ``log.csv``.
"""

import csv
import inspect
import json
import os
import sys
import time

import keras

from keras_mimo.checks import positive_int
from keras_mimo.training import callbacks as cb
from keras_mimo.training.optimizers import FilteredSGD
from keras_mimo.training.precision import global_dtype_policy, mixed_precision_policy
from keras_mimo.training.recipes import get_recipe
from keras_mimo.training.recipes import quick as make_quick
from keras_mimo.training.schedules import one_cycle


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_time`` (seconds of training and validation of the epoch) to the logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_time"] = time.perf_counter() - self._start


def resolve_recipe(config, *, epochs=None, batch_size=None, lr=None, quick=False, **overrides):
    """The recipe named ``config`` (or a TrainingRecipe) with command-line overrides applied."""
    recipe = get_recipe(config)
    if quick:
        recipe = make_quick(recipe)
    changes = {
        k: v
        for k, v in dict(epochs=epochs, batch_size=batch_size, lr=lr, **overrides).items()
        if v is not None
    }
    model_changes = {
        k: v
        for k, v in changes.get("model_overrides", {}).items()
        if recipe.model_overrides.get(k) != v
    }
    if model_changes:  # the description names the recipe's own body; say what no longer holds
        changes["description"] = (
            recipe.description
            + " Model overridden: "
            + ", ".join(f"{k}={v!r}" for k, v in sorted(model_changes.items()))
            + "."
        )
    return recipe.replace(**changes) if changes else recipe


def build_model(recipe, seed=0):
    from keras_mimo.data import image_dataset_spec
    from keras_mimo.models import create_model

    spec = image_dataset_spec(recipe.dataset)
    overrides = dict(recipe.model_overrides)
    overrides.setdefault("num_classes", spec.num_classes)
    overrides["input_shape"] = spec.input_shape
    overrides.setdefault("seed", seed)
    return create_model(recipe.model, **overrides)


_STRATEGIES = {}


def _distribution_scope(data_parallel):
    """(scope, replicas): ``scope()`` gives a fresh context under which to build and compile (tf.distribute's scope).

    On JAX the distribution is set globally (keras.distribution.set_distribution) and the scope is empty.
    """
    import contextlib

    if not data_parallel:
        return contextlib.nullcontext, 1
    backend = keras.backend.backend()
    if backend == "jax":
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext, len(devices)
    if backend == "tensorflow":
        import tensorflow as tf

        devices = tuple(
            d.name
            for d in (
                tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
            )
        )
        # One strategy per process and device set: a second MirroredStrategy in the same process can
        # mismatch collective instances with the first one.
        strategy = _STRATEGIES.get(devices)
        if strategy is None:
            strategy = _STRATEGIES[devices] = tf.distribute.MirroredStrategy(list(devices))
        return strategy.scope, strategy.num_replicas_in_sync
    raise NotImplementedError(
        f"Data-parallel training is not supported on the {backend} backend yet: use KERAS_BACKEND=jax "
        "(keras.distribution.DataParallel) or KERAS_BACKEND=tensorflow (tf.distribute.MirroredStrategy), "
        "or train on one device without --data-parallel."
    )


def _clamp_split(dataset, split, data_dir):
    """'train[:64]' -> 'train' when the split holds 64 examples or fewer (tensorflow-datasets rejects such slices)."""
    import re

    from keras_mimo.data import load_image_split

    match = re.fullmatch(r"\s*(\w+)\[:(\d+)\]\s*", split)
    if not match:
        return split
    size = int(load_image_split(dataset, match.group(1), data_dir=data_dir).cardinality())
    return match.group(1) if 0 <= size <= int(match.group(2)) else split


def _tensorboard_available():
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def _steps_of(dataset):
    steps = int(dataset.cardinality())
    if steps < 0:
        steps = sum(1 for _ in dataset)
    return steps


def _compare_configs(saved, current, output_dir):
    keys = sorted(set(saved) | set(current))
    prose = (
        "data_dir",
        "description",
    )  # where the data lives and how a recipe is described do not change a run
    differences = {
        k: (saved.get(k), current.get(k))
        for k in keys
        if saved.get(k) != current.get(k) and k not in prose
    }
    if differences:
        lines = "\n".join(
            f"  {k}: saved {a!r}, now {b!r}" for k, (a, b) in sorted(differences.items())
        )
        raise ValueError(
            f"{output_dir} holds a run with a different configuration, so it cannot be resumed:\n{lines}\n"
            "Use another --output folder (or delete this one) to start a new run."
        )


def _truncate_csv(path, first_epoch):
    """Drops the rows of epochs >= ``first_epoch`` (written before a crash, for epochs that will be rerun)."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as stream:
        rows = list(csv.reader(stream))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    kept = [row for row in body if row and int(float(row[0])) < first_epoch]
    with cb.atomic_path(path) as temporary:
        with open(temporary, "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(header)
            writer.writerows(kept)


def prepare_run_folder(output_dir, run_config):
    """Creates ``output_dir`` (absolute path returned), checks a resumed run has the same ``run_config``, cleans leftovers.

    ``config.json`` is written on the first run; a rerun whose configuration differs (``data_dir``
    aside) raises a ValueError listing the differences. Temporary files of a write that a crash
    interrupted are removed.
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    os.makedirs(output_dir, exist_ok=True)
    run_config = json.loads(json.dumps(run_config))
    config_path = os.path.join(output_dir, "config.json")
    if os.path.exists(config_path):
        with open(config_path) as stream:
            _compare_configs(json.load(stream), run_config, output_dir)
    else:
        cb.write_json_atomic(config_path, run_config)
    for leftover in os.listdir(output_dir):
        if leftover.startswith(".tmp-"):
            os.remove(os.path.join(output_dir, leftover))
    return output_dir


def resume_from_last(model, output_dir, steps_per_epoch, total_steps, name, verbose):
    """Loads ``last.keras`` (weights and optimizer state) into a compiled model if there is one; returns the epoch to start at.

    The epoch comes from the restored step counter, so the schedules continue where they stopped;
    rows that ``log.csv`` holds for epochs about to be rerun are dropped.
    """
    last_path = os.path.join(output_dir, "last.keras")
    initial_epoch = 0
    if os.path.exists(last_path):
        model.optimizer.build(model.trainable_variables)
        model.load_weights(last_path)
        iterations = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        initial_epoch = iterations // steps_per_epoch
        if verbose:
            print(
                f"Resuming {name} from {last_path}: {initial_epoch} epoch(s) done, "
                f"optimizer step {iterations} of {total_steps}.",
                flush=True,
            )
    _truncate_csv(os.path.join(output_dir, "log.csv"), initial_epoch)
    return initial_epoch


def run_folder_callbacks(output_dir, tensorboard, monitor="val_accuracy"):
    """The callbacks that go last: epoch timer, ``log.csv``, TensorBoard (if wanted and installed), atomic checkpoints."""
    callbacks = [
        EpochTimer(),
        keras.callbacks.CSVLogger(os.path.join(output_dir, "log.csv"), append=True),
    ]
    if tensorboard and _tensorboard_available():
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(output_dir, "tensorboard")))
    elif tensorboard:
        print(
            "keras-mimo train: TensorBoard logs are off because the tensorboard package is not installed "
            "(pip install tensorboard); log.csv has the same numbers.",
            file=sys.stderr,
            flush=True,
        )
    callbacks.append(cb.AtomicCheckpoint(output_dir, monitor=monitor, mode="max"))
    return callbacks


def logged_column(output_dir, column):
    """``column`` of every row of the run's ``log.csv`` as floats (0.0 where a row lacks it); [] without a log."""
    path = os.path.join(output_dir, "log.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as stream:
        return [float(row.get(column) or 0.0) for row in csv.DictReader(stream)]


def compile_for_scoring(model):
    """Compiles a loaded checkpoint for ``evaluate``: integer labels, logits, accuracy."""
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy("accuracy")],
    )


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _model_argument(recipe, name, absent):
    """The constructor argument ``name`` the recipe's model gets (its default if not set); ``absent`` if it has none."""
    from keras_mimo.models.registry import model_class_and_config

    cls, config = model_class_and_config(recipe.model)
    parameter = inspect.signature(cls).parameters.get(name)
    return (
        absent
        if parameter is None
        else {**config, **recipe.model_overrides}.get(name, parameter.default)
    )


def check_superpositions(recipe):
    """A ValueError unless every N the recipe validates at (and a dynamic run's lower N) divides the model's capacity."""
    from keras_mimo.superposition import allowed_superpositions

    capacity = _model_argument(recipe, "capacity", 1)
    allowed = allowed_superpositions(capacity)
    wrong = [n for n in recipe.eval_superpositions or () if n not in allowed]
    if wrong:
        raise ValueError(
            f"eval_superpositions={recipe.eval_superpositions!r}: {recipe.name}'s model has capacity "
            f"{capacity}, so it can be validated at N in {allowed} only, not {wrong}."
        )
    if recipe.dynamic_p is not None and recipe.dynamic_low not in allowed:
        raise ValueError(
            f"dynamic_low={recipe.dynamic_low}: {recipe.name}'s model has capacity {capacity}, so "
            f"the lower N must be one of {allowed}."
        )


def check_isometry_every(recipe, every):
    """Returns ``every`` (lazy isometry regularisation) if it is a positive int the recipe's model can use; else a ValueError."""
    every = positive_int("isometry_every", every, hint=" (1: the penalty on every update)")
    if every > 1:
        if not _model_argument(recipe, "isometry_regularization", 0.0):
            raise ValueError(
                f"isometry_every={every}: {recipe.name}'s model ({recipe.model}) has no isometry "
                "regulariser to apply lazily; leave it at 1."
            )
    return every


def check_run_arguments(recipe, steps_per_epoch, mixed_precision, isometry_every):
    """Checks a run's arguments beyond the recipe's own fields (a ValueError naming the bad one); returns its dtype policy.

    ``train`` calls it before making the run folder; the CLI calls it first to print a one-line error.
    """
    if steps_per_epoch is not None:
        positive_int(
            "steps_per_epoch", steps_per_epoch, hint=" (or leave it out: every full batch)"
        )
    check_superpositions(recipe)
    policy = image_precision_policy(mixed_precision)
    check_isometry_every(recipe, isometry_every)
    return policy


def image_precision_policy(mode):
    """The dtype policy of an image run for ``--mixed-precision mode`` (None: float32, the reference's)."""
    policy = mixed_precision_policy(mode)
    if policy == "mixed_float16":
        raise ValueError(
            "mixed_precision='float16' is not available for the image recipes: it needs loss scaling, "
            "whose skipped overflow steps would shift the step counter that schedules and resuming "
            "rely on. Use 'bfloat16' (no loss scaling needed) or 'off'."
        )
    return policy


def train(
    config,
    output_dir,
    *,
    epochs=None,
    batch_size=None,
    lr=None,
    data_dir=None,
    seed=0,
    quick=False,
    verbose="auto",
    data_parallel=False,
    tensorboard=True,
    steps_per_epoch=None,
    jit_compile="auto",
    mixed_precision="off",
    isometry_every=1,
    extra_callbacks=(),
    **overrides,
):
    """Trains recipe ``config`` into ``output_dir``, resuming an interrupted run there; returns the final results dict.

    ``epochs``, ``batch_size`` (superpositions per batch), ``lr`` and any other ``TrainingRecipe``
    field (``overrides``) replace the recipe's values; ``quick=True`` shrinks it to a CPU smoke test.
    ``data_parallel=True`` trains on all local devices (JAX: keras.distribution.DataParallel;
    TensorFlow: tf.distribute.MirroredStrategy; not supported on PyTorch yet).
    ``steps_per_epoch`` caps the updates per epoch (the schedule is sized to match).
    ``jit_compile`` is handed to ``model.compile`` ("auto": Keras' choice per backend).
    ``mixed_precision``: "off"/"auto" (float32, as the reference) or "bfloat16" (Keras' mixed_bfloat16:
    float32 weights and logits, bfloat16 convolutions; 2-4x faster convolutions on CPUs with AMX
    and on recent GPUs). A run folder remembers it, and a rerun with another precision is refused.
    ``isometry_every=k`` > 1 computes the isometry penalty on every k-th update only, weighted k
    (``callbacks.LazyIsometry``): the same gradient on average for a k-th of its fixed cost per step.
    """
    recipe = resolve_recipe(
        config, epochs=epochs, batch_size=batch_size, lr=lr, quick=quick, **overrides
    )
    policy = check_run_arguments(recipe, steps_per_epoch, mixed_precision, isometry_every)
    run_config = {k: _jsonable(v) for k, v in recipe.to_dict().items()}
    run_config.update(
        seed=seed, steps_per_epoch_cap=steps_per_epoch, data_parallel=bool(data_parallel)
    )
    if (
        policy
    ):  # float32 runs keep the config.json of earlier versions, so their folders still resume
        run_config["mixed_precision"] = policy
    if isometry_every > 1:  # likewise recorded only when not the default
        run_config["isometry_every"] = isometry_every
    output_dir = prepare_run_folder(output_dir, run_config)
    with global_dtype_policy(policy):
        return _train(
            recipe,
            output_dir,
            data_dir,
            seed,
            verbose,
            data_parallel,
            tensorboard,
            steps_per_epoch,
            jit_compile,
            isometry_every,
            extra_callbacks,
        )


def _train(
    recipe,
    output_dir,
    data_dir,
    seed,
    verbose,
    data_parallel,
    tensorboard,
    steps_per_epoch,
    jit_compile,
    isometry_every,
    extra_callbacks,
):
    from keras_mimo.data import (
        image_dataset_spec,
        image_eval_dataset,
        image_train_dataset,
        load_image_split,
    )

    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2

    keras.utils.set_random_seed(seed)
    scope, replicas = _distribution_scope(data_parallel)
    spec = image_dataset_spec(recipe.dataset)
    with scope():
        model = build_model(recipe, seed)
    capacity = model.capacity
    one_hot = bool(recipe.mixup_alpha)
    recipe = recipe.replace(
        train_split=_clamp_split(recipe.dataset, recipe.train_split, data_dir),
        eval_split=_clamp_split(recipe.dataset, recipe.eval_split, data_dir),
    )

    # Every epoch is `capacity` passes over the split in batches of batch_size * capacity images, the
    # last partial batch dropped: examples // batch_size steps.
    examples = int(
        load_image_split(recipe.dataset, recipe.train_split, data_dir=data_dir).cardinality()
    )
    full_steps = examples // recipe.batch_size
    if full_steps == 0:
        raise ValueError(
            f"{recipe.train_split} of {spec.title} holds fewer than one batch of "
            f"{recipe.batch_size * capacity} images: lower --batch-size."
        )
    steps = full_steps if steps_per_epoch is None else min(full_steps, int(steps_per_epoch))
    data_epochs = -(
        -recipe.epochs * steps // full_steps
    )  # a capped epoch takes the next `steps` batches
    eval_superpositions = tuple(recipe.eval_superpositions or (capacity,))
    eval_data = image_eval_dataset(
        recipe.dataset,
        recipe.batch_size,
        capacity,
        data_dir=data_dir,
        split=recipe.eval_split,
        one_hot_labels=one_hot,
    )
    total_steps = recipe.epochs * steps
    with scope():
        lr_schedule, momentum_schedule = one_cycle(
            recipe.lr,
            max(total_steps, 2),
            recipe.pct_start,
            recipe.div_factor,
            recipe.final_div_factor,
            recipe.base_momentum,
            recipe.max_momentum,
        )
        optimizer = FilteredSGD(
            lr_schedule,
            momentum=momentum_schedule,
            weight_decay=recipe.weight_decay,
            gradient_filter=recipe.gradient_filter,
            global_clipnorm=recipe.clipnorm,
        )
        if one_hot:
            loss, accuracy = (
                keras.losses.CategoricalCrossentropy(from_logits=True),
                keras.metrics.CategoricalAccuracy("accuracy"),
            )
        else:
            loss, accuracy = (
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                keras.metrics.SparseCategoricalAccuracy("accuracy"),
            )
        model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy], jit_compile=jit_compile)

        initial_epoch = resume_from_last(
            model, output_dir, steps, total_steps, recipe.name, verbose
        )

    callbacks = []
    if isometry_every > 1:  # before the validation callback, which must see the penalty at scale 1
        callbacks.append(cb.LazyIsometry(isometry_every))
    if recipe.dynamic_p is not None:
        callbacks.append(
            cb.DynamicSuperposition(capacity, low=recipe.dynamic_low, p=recipe.dynamic_p, seed=seed)
        )
    callbacks += [
        cb.GradientFilterCallback(verbose=1 if verbose else 0),
        cb.ScheduleLogger(),
        cb.MultiSuperpositionValidation(eval_data, eval_superpositions),
        *extra_callbacks,
        *run_folder_callbacks(output_dir, tensorboard),
    ]
    if verbose:
        print(
            f"{recipe.name}: {recipe.description}\n  {model.count_params():,} parameters, capacity {capacity}, "
            f"{recipe.batch_size} superpositions ({recipe.batch_size * capacity} images) per batch, {steps} steps/epoch, "
            f"{recipe.epochs} epochs, {replicas} device(s), {keras.config.dtype_policy().name}; output {output_dir}",
            flush=True,
        )
        left_over = (examples - full_steps * recipe.batch_size) * capacity
        if left_over > 0:
            print(
                f"  Each epoch leaves out the last {left_over} of its {examples * capacity} reshuffled images "
                "(a different random few every epoch), as the reference's drop_last: every batch keeps its shape.",
                flush=True,
            )
    if initial_epoch < recipe.epochs:
        # One stream of every remaining epoch, each drawn from (seed, epoch) alone, so a resumed run
        # continues the data order of the uninterrupted one.
        done_batches = initial_epoch * steps
        train_data = image_train_dataset(
            recipe.dataset,
            recipe.batch_size,
            capacity,
            data_dir=data_dir,
            split=recipe.train_split,
            seed=seed,
            augment=recipe.augment,
            mixup_alpha=recipe.mixup_alpha or None,
            one_hot_labels=one_hot,
            passes_per_epoch=capacity,
            drop_remainder=True,
            epochs=data_epochs,
            first_epoch=done_batches // full_steps,
        ).skip(done_batches % full_steps)
        model.fit(
            train_data,
            epochs=recipe.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps,
            shuffle=False,
            callbacks=callbacks,
            verbose=verbose,
        )
    return _final_results(model, eval_data, eval_superpositions, output_dir, recipe, verbose)


def _final_results(model, eval_data, superpositions, output_dir, recipe, verbose):
    validation = cb.MultiSuperpositionValidation(eval_data, superpositions)
    validation.set_model(model)
    metrics = validation.evaluate_all()
    epoch_times = logged_column(output_dir, "epoch_time")
    train_time, epochs_logged = sum(epoch_times), len(epoch_times)
    results = dict(
        recipe=recipe.name,
        dataset=recipe.dataset,
        split=recipe.eval_split,
        epochs=epochs_logged,
        train_time_s=round(train_time, 1),
        accuracy={str(n): metrics[f"val_accuracy_n{n}"] for n in superpositions},
        loss={str(n): metrics[f"val_loss_n{n}"] for n in superpositions},
        state=cb.read_state(output_dir),
    )
    cb.write_json_atomic(os.path.join(output_dir, "results.json"), results)
    if verbose:
        accuracy = ", ".join(
            f"N={n}: {100 * results['accuracy'][str(n)]:.2f}%" for n in superpositions
        )
        print(
            f"{recipe.name}: {recipe.eval_split} accuracy {accuracy}; train time {train_time:.0f} s",
            flush=True,
        )
    return results


def evaluate(
    checkpoint,
    dataset,
    superpositions=None,
    *,
    data_dir=None,
    batch_size=128,
    split="test",
    verbose=0,
):
    """Accuracy and loss of a saved ``.keras`` model on ``split`` of ``dataset`` at each N; returns {N: {"accuracy", "loss"}}."""
    import keras_mimo.models  # noqa: F401  (registers the model classes)
    from keras_mimo.data import image_eval_dataset
    from keras_mimo.superposition import check_superposition

    if not os.path.isfile(checkpoint):
        raise ValueError(
            f"checkpoint {str(checkpoint)!r} is not a file: pass a .keras file that keras-mimo train "
            "wrote (best.keras or last.keras in the run folder)."
        )
    model = keras.saving.load_model(checkpoint, compile=False)
    capacity = getattr(model, "capacity", 1)
    superpositions = [
        check_superposition(n, capacity) for n in (superpositions or [capacity])
    ]  # all before any pass
    compile_for_scoring(model)
    data = image_eval_dataset(dataset, batch_size, capacity, data_dir=data_dir, split=split)
    results = {}
    for n in superpositions:
        model.superposition = n
        metrics = model.evaluate(data, verbose=verbose, return_dict=True)
        results[n] = {"accuracy": float(metrics["accuracy"]), "loss": float(metrics["loss"])}
    return results
