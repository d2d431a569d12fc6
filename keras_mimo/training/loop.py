"""The one run loop: a recipe through ``model.fit`` into a run folder, resumable, for both families.

:func:`train` resolves the recipe, lets the family's task
(:class:`~keras_mimo.training.image.ImageTask`
or :class:`~keras_mimo.training.lra.LRATask`) check its arguments and its data, then, in the run
folder (``output_dir``):

* ``config.json``: the resolved recipe and the run's options (a rerun must match it to resume);
* ``last.keras`` (every epoch) and ``best.keras`` (best ``val_accuracy``), full Keras files
  written atomically (temporary file + ``os.replace``);
* ``state.json``: last completed epoch, best value; ``log.csv``: one row per epoch (loss,
  accuracy, validation metrics, and the bookkeeping the epoch line leaves out: learning rate,
  momentum, iterations, skipped updates, ``train_time``, ``epoch_time``, ``steps_per_second``);
  ``tensorboard/``: the same as TensorBoard events;
* ``results.json``: the task's final evaluation, the train time, and the number of replicas.

Rerunning the same command after a crash or SIGKILL resumes after the last completed epoch:
weights and optimizer state (step counter, so the same schedule position) come back from
``last.keras``, and rows of unfinished epochs are dropped from ``log.csv``. A run that fails before
its first epoch is done leaves no run folder behind (unless the folder existed before).

For the image family one epoch is N passes over the training split at capacity N; for Long
Range Arena one epoch is ``eval_frequency`` optimizer steps, followed by a validation.
"""

import csv
import json
import os
import shutil
import sys
import time

import keras

from keras_mimo.training import callbacks as cb
from keras_mimo.training.precision import global_dtype_policy
from keras_mimo.training.recipes import resolve_recipe

# Epoch-log entries that go to log.csv and TensorBoard but not into the epoch line.
SHOWN_IN_EPOCH_LINE = ("loss", "accuracy")


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_time`` (seconds of training and validation of the epoch) to the logs.

    Goes after the validation callbacks, so that their time is counted.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_time"] = time.perf_counter() - self._start


class TrainTimer(keras.callbacks.Callback):
    """Logs ``train_time`` (seconds of the epoch's training steps) and ``steps_per_second``.

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


class EpochLine(keras.callbacks.ProgbarLogger):
    """Keras' progress bar / epoch line showing loss, accuracy and the validation metrics only.

    The bookkeeping entries (learning rate, momentum, iterations, skipped updates, timers) stay
    in the logs for ``log.csv``, TensorBoard and History; only the printed line leaves them out.
    """

    def on_epoch_end(self, epoch, logs=None):
        shown = {
            k: v
            for k, v in (logs or {}).items()
            if k in SHOWN_IN_EPOCH_LINE or k.startswith("val_")
        }
        super().on_epoch_end(epoch, shown)


def _tensorboard_available():
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def _compare_configs(saved, current, output_dir):
    keys = sorted(set(saved) | set(current))
    prose = ("data_dir", "description")  # where the data live and the words do not change a run
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
            f"{output_dir} holds a run with a different configuration, so it cannot be resumed:\n"
            f"{lines}\nUse another --output folder (or delete this one) to start a new run."
        )


def _truncate_csv(path, first_epoch):
    """Drops the rows of epochs >= ``first_epoch`` (written before a crash, for epochs to rerun)."""
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
    """Creates ``output_dir``, checks a resumed run has the same ``run_config``, cleans leftovers.

    Returns ``(absolute path, created)``; ``created`` is True when the folder did not exist.
    ``config.json`` is written on the first run; a rerun whose configuration differs
    (``data_dir`` and the description aside) raises a ValueError listing the differences, before
    anything in the folder changes. Temporary files of a write that a crash interrupted are removed.
    """
    output_dir = os.path.abspath(os.fspath(output_dir))
    run_config = json.loads(json.dumps(run_config))
    config_path = os.path.join(output_dir, "config.json")
    if os.path.exists(config_path):
        with open(config_path) as stream:
            _compare_configs(json.load(stream), run_config, output_dir)
    created = not os.path.exists(output_dir)
    try:
        os.makedirs(output_dir, exist_ok=True)
        probe = os.path.join(output_dir, ".tmp-write-probe")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise PermissionError(
            f"cannot write the run folder {output_dir} ({error.strerror}): choose a writable "
            "--output folder."
        ) from None
    if not os.path.exists(config_path):
        cb.write_json_atomic(config_path, run_config)
    for leftover in os.listdir(output_dir):
        if leftover.startswith(".tmp-"):
            os.remove(os.path.join(output_dir, leftover))
    return output_dir, created


def resume_from_last(model, output_dir, steps_per_epoch, total_steps, name, verbose):
    """Loads ``last.keras`` (weights, optimizer state) into a compiled model; returns the start
    epoch.

    The epoch comes from the restored step counter, so the schedules continue where they
    stopped; rows that ``log.csv`` holds for epochs about to be rerun are dropped.
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
    """The callbacks that go last: epoch timer, ``log.csv``, TensorBoard, atomic checkpoints."""
    callbacks = [
        EpochTimer(),
        keras.callbacks.CSVLogger(os.path.join(output_dir, "log.csv"), append=True),
    ]
    if tensorboard and _tensorboard_available():
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(output_dir, "tensorboard")))
    elif tensorboard:
        print(
            "keras-mimo train: TensorBoard logs are off because the tensorboard package is not "
            "installed (pip install tensorboard); log.csv has the same numbers.",
            file=sys.stderr,
            flush=True,
        )
    callbacks.append(cb.AtomicCheckpoint(output_dir, monitor=monitor, mode="max"))
    return callbacks


def logged_column(output_dir, column):
    """``column`` of every row of the run's ``log.csv`` as floats (0.0 where a row lacks it)."""
    path = os.path.join(output_dir, "log.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as stream:
        return [float(row.get(column) or 0.0) for row in csv.DictReader(stream)]


def compile_for_scoring(model):
    """Compiles a loaded checkpoint for evaluation: integer labels, logits, accuracy."""
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy("accuracy")],
    )


class Task:
    """What a family plugs into :func:`train`; the run loop calls, in this order:

    ``check()`` (arguments and data, before the run folder exists; sets ``policy``, the dtype
    policy, and ``steps_per_epoch`` / ``epochs`` / ``total_steps``), ``run_config()`` (what
    ``config.json`` records), ``build_and_compile(jit_compile)`` (the compiled model),
    ``callbacks(model, initial_epoch, verbose)`` (the family's, before the run folder's),
    ``train_data(initial_epoch)``, ``describe(model, output_dir)`` (the opening lines),
    ``final_results(model, output_dir)`` (the family's part of ``results.json``) and
    ``summary(results)`` (the closing line). ``replicas`` counts the devices trained on.
    """

    def __init__(
        self,
        recipe,
        *,
        output_dir,
        data_dir,
        mixed_precision,
        data_parallel,
        steps_per_epoch,
        isometry_every,
    ):
        self.recipe, self.output_dir, self.data_dir = recipe, output_dir, data_dir
        self.mixed_precision, self.data_parallel = mixed_precision, bool(data_parallel)
        self.steps_cap, self.isometry_every = steps_per_epoch, isometry_every
        self.replicas = 1


def task_for(recipe, **options):
    """The family task that trains ``recipe`` (image or Long Range Arena)."""
    if recipe.family == "image":
        from keras_mimo.training.image import ImageTask

        return ImageTask(recipe, **options)
    from keras_mimo.training.lra import LRATask

    return LRATask(recipe, **options)


def train(
    recipe,
    output_dir,
    *,
    quick=False,
    data_dir=None,
    seed=None,
    verbose="auto",
    tensorboard=True,
    jit_compile="auto",
    mixed_precision="auto",
    data_parallel=False,
    steps_per_epoch=None,
    isometry_every=1,
    extra_callbacks=(),
    grid=None,
    max_length=None,
    **changes,
):
    """Trains ``recipe`` (a name or a Recipe) into ``output_dir``, resuming a run there.

    Returns the final results dict (also written to ``results.json``).

    ``changes`` replace recipe fields (``epochs``, ``batch_size``, ``lr``, ``steps``,
    ``model_overrides``, ...; see :class:`~keras_mimo.training.recipes.Recipe`); ``quick=True``
    shrinks the recipe to a CPU smoke test; ``grid`` / ``max_length`` change an LRA recipe's
    grid and sequence length; ``seed`` replaces the recipe's seed.
    ``mixed_precision``: "auto" (the reference's choice: float32 for images, float16 for LRA on a
    GPU), "off", "bfloat16" (float32 weights and logits, bfloat16 compute) or "float16" (LRA only).
    Image recipes also take ``data_parallel`` (all local devices: JAX DataParallel or TF
    MirroredStrategy), ``steps_per_epoch`` (a cap on updates per epoch; the schedule is sized to
    match) and ``isometry_every=k`` (the isometry penalty on every k-th update, weighted k).
    ``jit_compile`` goes to ``model.compile``. Every argument is checked, and the data found,
    before the run folder is made: mistakes raise ValueError (or FileNotFoundError for missing
    data) naming the problem and the fix.

    Example:

    >>> results = train("mimoconv-10-2.fashion-mnist-n2", "runs/n2", quick=True)
    >>> results["accuracy"]  # {"2": ...}
    """
    recipe = resolve_recipe(recipe, quick=quick, grid=grid, max_length=max_length, **changes)
    if seed is not None:
        recipe = recipe.replace(seed=int(seed))
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    task = task_for(
        recipe,
        output_dir=os.path.abspath(os.fspath(output_dir)),
        data_dir=data_dir,
        mixed_precision=mixed_precision,
        data_parallel=data_parallel,
        steps_per_epoch=steps_per_epoch,
        isometry_every=isometry_every,
    )
    task.check()  # arguments, then the data: all before the run folder exists
    output_dir, created = prepare_run_folder(output_dir, task.run_config())
    try:
        with global_dtype_policy(task.policy):
            return _run(task, output_dir, verbose, tensorboard, jit_compile, extra_callbacks)
    except BaseException:
        if created and not os.path.exists(os.path.join(output_dir, "last.keras")):
            shutil.rmtree(output_dir, ignore_errors=True)  # nothing done: nothing to resume
        raise


def _run(task, output_dir, verbose, tensorboard, jit_compile, extra_callbacks):
    recipe = task.recipe
    keras.utils.set_random_seed(recipe.seed)
    model = task.build_and_compile(jit_compile)
    initial_epoch = resume_from_last(
        model, output_dir, task.steps_per_epoch, task.total_steps, recipe.name, verbose
    )
    callbacks = [
        TrainTimer(task.steps_per_epoch),
        *task.callbacks(model, initial_epoch, verbose),
        *extra_callbacks,
        *run_folder_callbacks(output_dir, tensorboard),
        EpochLine(),
    ]
    if verbose:
        print(task.describe(model, output_dir), flush=True)
    if initial_epoch < task.epochs:
        model.fit(
            task.train_data(initial_epoch),
            epochs=task.epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=task.steps_per_epoch,
            shuffle=False,
            callbacks=callbacks,
            verbose=verbose,
        )
    results = task.final_results(model, output_dir)
    results.update(
        recipe=recipe.name,
        architecture=recipe.architecture,
        dataset=recipe.dataset,
        replicas=task.replicas,
        state=cb.read_state(output_dir),
    )
    cb.write_json_atomic(os.path.join(output_dir, "results.json"), results)
    if verbose:
        print(task.summary(results), flush=True)
    return results


def evaluate(
    checkpoint,
    dataset,
    superpositions=None,
    *,
    data_dir=None,
    batch_size=128,
    split="test",
    data_options=None,
    verbose=0,
):
    """Accuracy and loss of a saved ``.keras`` model on ``split`` of ``dataset`` at each N or grid.

    Returns ``{N: {"accuracy", "loss"}}`` for image datasets and ``{"MxN": {...}}`` for Long Range
    Arena tasks (``superpositions`` then holds grids: ``"2x2"`` or pairs). Everything is checked
    before any data are read: the checkpoint is a file, the model fits the dataset's family and
    classes, and every N divides its capacity.

    Example:

    >>> evaluate("runs/n2/best.keras", "fashion-mnist", [1, 2])
    """
    from keras_mimo.registry import get_dataset

    info = get_dataset(dataset)
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(
            f"checkpoint {str(checkpoint)!r} is not a file: pass a .keras file that keras-mimo "
            "train wrote (best.keras or last.keras in the run folder)."
        )
    import keras_mimo.models  # noqa: F401  (registers the model classes)

    model = keras.saving.load_model(checkpoint, compile=False)
    if info.family == "image":
        from keras_mimo.training.image import evaluate_image

        return evaluate_image(
            model, checkpoint, info, superpositions, data_dir, batch_size, split, verbose
        )
    from keras_mimo.training.lra import evaluate_lra

    return evaluate_lra(
        model, checkpoint, info, superpositions, data_dir, batch_size, split, data_options
    )


def check_classes(model_classes, info, what):
    """A ValueError when a model with ``model_classes`` outputs cannot score ``info``'s labels."""
    if model_classes is not None and model_classes < info.num_classes:
        raise ValueError(
            f"{what} has {model_classes} classes, but {info.title} labels go up to "
            f"{info.num_classes - 1}: use a model with num_classes={info.num_classes} (or the "
            "dataset it was made for)."
        )
