"""The Long Range Arena part of the run loop: MIMOFormer / Performer with the reference's recipes.

:class:`LRATask` plugs into :func:`keras_mimo.training.train`:

* ``CyclicAdamW`` (PyTorch AdamW, epsilon 1e-6, weight decay 0) with PyTorch's ``OneCycleLR`` in
  linear mode: the learning rate rises linearly from lr / 25 to lr over ``warmup_steps`` and falls
  linearly to lr / 25e4 at ``steps``, while ``beta_1`` cycles 0.95 -> 0.85 -> 0.95;
* for 'att.' models the MIMO warm-up (:class:`~keras_mimo.models.MIMOWarmup`): the first
  ``mimo_warmup_steps`` steps at grid M/2 x N/2;
* one Keras epoch = ``eval_frequency`` steps on the repeated, shuffled training split, then
  validation on ``eval_steps`` dev batches; resuming restores the schedule and MIMO warm-up
  position (the data order restarts from the seed);
* at the end ``best.keras`` is evaluated on the whole dev and test splits.

Mixed precision: the reference trains in float16 on GPUs. ``mixed_precision="auto"`` does the
same (``mixed_float16``) when Keras sees a GPU and stays in float32 on CPUs, where float16 is slow.
``--quick`` on ListOps without ``data_dir`` first writes a tiny generated ListOps set into the
run folder (``listops-quick-data``), where ``keras-mimo evaluate`` finds it again.
"""

import json
import os

import keras

from keras_mimo.grids import parse_grid
from keras_mimo.registry import get_architecture
from keras_mimo.training import callbacks as cb
from keras_mimo.training.loop import Task, check_classes, compile_for_scoring, logged_column
from keras_mimo.training.optimizers import CyclicAdamW
from keras_mimo.training.precision import gpu_visible, mixed_precision_policy
from keras_mimo.training.recipes import LENGTH_TASKS, QUICK_LENGTH, epochs_of
from keras_mimo.training.schedules import OneCycleLR, OneCycleMomentum

QUICK_DATA_FOLDER = "listops-quick-data"


def steps_of(dataset):
    """The number of batches of a tf.data pipeline (counted once when its cardinality is
    unknown)."""
    steps = int(dataset.cardinality())
    if steps < 0:
        steps = sum(1 for _ in dataset)
    return steps


def _with_known_length(dataset):
    # CSV / file pipelines have unknown cardinality; counting the batches once lets Keras know
    # where an evaluation ends (no "ran out of data" warnings, exact progress bars).
    import tensorflow as tf

    return dataset.apply(tf.data.experimental.assert_cardinality(steps_of(dataset)))


def lra_datasets(recipe, data_dir):
    """(train, dev-for-validation, dev, test) pipelines of the recipe's task, ``batch_size``
    sequences."""
    from keras_mimo.data.lra import lra_dataset

    common = dict(
        batch_size=int(recipe.batch_size),
        grid=1,
        seed=int(recipe.seed),
        data_dir=data_dir,
        **recipe.data_options,
    )
    train = lra_dataset(recipe.dataset, "train", repeat=True, **common)
    dev, test = (
        _with_known_length(lra_dataset(recipe.dataset, s, **common)) for s in ("dev", "test")
    )
    validation = dev.take(min(int(recipe.eval_steps), int(dev.cardinality())))
    return train, validation, dev, test


def quick_listops_dir(output_dir):
    """A tiny generated ListOps set in the run folder (``--quick`` without ``--data-dir``)."""
    from keras_mimo.data.lra import write_listops_splits

    folder = os.path.join(output_dir, QUICK_DATA_FOLDER)
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


class LRATask(Task):
    """Trains a Long Range Arena recipe (MIMOFormer, Performer) in
    :func:`keras_mimo.training.train`."""

    def __init__(self, recipe, **options):
        super().__init__(recipe, **options)
        for flag, value, default in (
            ("data_parallel", self.data_parallel, False),
            ("steps_per_epoch", self.steps_cap, None),
            ("isometry_every", self.isometry_every, 1),
        ):
            if value != default:
                raise ValueError(
                    f"{flag} applies to the image recipes only; {recipe.name} trains a Long Range "
                    "Arena model (use steps / eval_frequency for the length of the run)."
                )
        self.steps_per_epoch = int(recipe.eval_frequency)
        self.total_steps = int(recipe.steps)
        self.epochs = epochs_of(recipe)

    def check(self):
        recipe = self.recipe
        self.policy = mixed_precision_policy(
            self.mixed_precision, auto_policy="mixed_float16" if gpu_visible() else None
        )
        arguments = {**get_architecture(recipe.architecture).arguments, **recipe.model_overrides}
        check_classes(
            arguments.get("num_classes"),
            _info(recipe.dataset),
            f"{recipe.name}'s model (num_classes={arguments.get('num_classes')})",
        )
        if self.data_dir is None and recipe.name.endswith("-quick") and recipe.dataset == "listops":
            self.data_dir = os.path.join(self.output_dir, QUICK_DATA_FOLDER)
            self._make_quick_data = True
        else:
            self._make_quick_data = False
            self._check_data()

    def _check_data(self):
        from keras_mimo.data.lra import lra_dataset

        options = dict(self.recipe.data_options, data_dir=self.data_dir, batch_size=1, grid=1)
        lra_dataset(self.recipe.dataset, "dev", **options)  # raises LRADataNotFoundError

    def run_config(self):
        return dict(self.recipe.to_dict(), mixed_precision=self.policy or "float32")

    def build_and_compile(self, jit_compile):
        recipe = self.recipe
        if self._make_quick_data:
            quick_listops_dir(self.output_dir)
        self.train, self.validation, self.dev, self.test = lra_datasets(recipe, self.data_dir)
        model = get_architecture(recipe.architecture).build(
            **{"seed": recipe.seed, **recipe.model_overrides}
        )
        pct_start = recipe.warmup_steps / self.total_steps
        lr = OneCycleLR(
            recipe.lr,
            self.total_steps,
            pct_start,
            recipe.div_factor,
            recipe.final_div_factor,
            anneal_strategy="linear",
        )
        beta_1 = OneCycleMomentum(
            self.total_steps,
            pct_start,
            base_momentum=recipe.base_momentum,
            max_momentum=recipe.max_momentum,
            anneal_strategy="linear",
        )
        optimizer = CyclicAdamW(
            lr,
            weight_decay=recipe.weight_decay,
            beta_1=beta_1,
            beta_2=recipe.beta_2,
            epsilon=recipe.epsilon,
        )
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy("accuracy")],
            jit_compile=jit_compile,
        )
        return model

    def callbacks(self, model, initial_epoch, verbose):
        from keras_mimo.models.mimoformer import MIMOWarmup

        recipe, callbacks = self.recipe, []
        if recipe.mimo_warmup_steps:
            warmup = MIMOWarmup(int(recipe.mimo_warmup_steps), full_grid=tuple(recipe.grid))
            warmup.steps_done = initial_epoch * self.steps_per_epoch
            callbacks.append(warmup)
        return callbacks + [
            cb.ScheduleLogger(),
            cb.MultiSuperpositionValidation(
                self.validation, [tuple(recipe.grid)], attribute="grid"
            ),
        ]

    def train_data(self, initial_epoch):
        return self.train

    def describe(self, model, output_dir):
        recipe = self.recipe
        m, n = recipe.grid
        changed = ", ".join(f"{k}={v}" for k, v in sorted(recipe.model_overrides.items()))
        return (
            f"{recipe.name}: {recipe.description}"
            + (f"\n  changed from the architecture: {changed}" if changed else "")
            + f"\n  {model.count_params():,} parameters, grid {m} x {n}, {recipe.batch_size} "
            f"sequences ({recipe.batch_bundles} bundles) per step, {self.total_steps} steps "
            f"({self.epochs} evaluations every {self.steps_per_epoch} steps), MIMO warm-up "
            f"{recipe.mimo_warmup_steps} steps; output {output_dir}"
        )

    def final_results(self, model, output_dir):
        recipe = self.recipe
        best = keras.saving.load_model(os.path.join(output_dir, "best.keras"), compile=False)
        best.grid = tuple(recipe.grid)  # a checkpoint written during the MIMO warm-up: half grid
        compile_for_scoring(best)
        scores = {}
        for split, data in (("dev", self.dev), ("test", self.test)):
            metrics = best.evaluate(data, verbose=0, return_dict=True)
            scores[split] = {"accuracy": float(metrics["accuracy"]), "loss": float(metrics["loss"])}
        train_times = logged_column(output_dir, "train_time")
        train_time, evaluations = sum(train_times), len(train_times)
        # the first block includes compilation
        rates = sorted(logged_column(output_dir, "steps_per_second")[1:])
        steps = evaluations * self.steps_per_epoch
        state = cb.read_state(output_dir)
        best_epoch = None if not state else state.get("best_epoch")
        return dict(
            grid=list(recipe.grid),
            steps=steps,
            train_time_s=round(train_time, 1),
            wall_time_s=round(sum(logged_column(output_dir, "epoch_time")), 1),
            steps_per_second=round(steps / train_time, 3) if train_time else None,
            sequences_per_second=(
                round(steps * int(recipe.batch_size) / train_time, 1) if train_time else None
            ),
            median_steps_per_second_after_first_block=(
                round(rates[len(rates) // 2], 3) if rates else None
            ),
            best_dev_step=None
            if best_epoch is None
            else (int(best_epoch) + 1) * self.steps_per_epoch,
            dev=scores["dev"],
            test=scores["test"],
            parameters=int(best.count_params()),
        )

    def summary(self, results):
        return (
            f"{results['recipe']}: best dev checkpoint (step {results['best_dev_step']}): dev "
            f"accuracy {100 * results['dev']['accuracy']:.2f}%, test accuracy "
            f"{100 * results['test']['accuracy']:.2f}%; {results['steps_per_second']} steps/s "
            f"over {results['steps']} steps"
        )


def _info(task):
    from keras_mimo.registry import get_dataset

    return get_dataset(task, family="lra")


def evaluate_lra(model, checkpoint, info, grids, data_dir, batch_size, split, data_options):
    """``evaluate`` for LRA tasks: ``{"MxN": {"accuracy", "loss"}}``.

    The data options (sequence length, pixel token offset...) and, for a ``--quick`` run, the
    generated data folder come from the run folder holding ``checkpoint`` when there is one, so
    the model sees sequences exactly as in training; ``data_options`` overrides them.
    """
    from keras_mimo.data.lra import lra_dataset

    if not hasattr(model, "grid"):
        raise ValueError(
            f"{checkpoint} holds a {type(model).__name__}, which reads images: evaluate it on an "
            "image dataset (cifar10, cifar100, svhn, mnist, fashion-mnist)."
        )
    check_classes(getattr(model, "num_classes", None), info, f"{checkpoint}'s model")
    options = {}
    folder = os.path.dirname(os.path.abspath(os.fspath(checkpoint)))
    run_config = os.path.join(folder, "config.json")
    if os.path.exists(run_config):
        with open(run_config) as stream:
            saved = json.load(stream)
        if saved.get("dataset") not in (None, info.name):
            raise ValueError(
                f"{checkpoint} was trained on LRA {saved['dataset']}, not {info.name}: pass "
                f"--dataset {saved['dataset']}."
            )
        options.update(saved.get("data_options") or {})
        quick_data = os.path.join(folder, QUICK_DATA_FOLDER)
        if data_dir is None and os.path.isdir(quick_data):
            data_dir = quick_data  # the tiny data a --quick run made for itself
    elif info.name in LENGTH_TASKS:
        options["max_length"] = model.max_length
    options.update(data_options or {})
    points = [tuple(model.capacity)] if not grids else [parse_grid(g) for g in grids]
    data = _with_known_length(
        lra_dataset(
            info.name, split, data_dir=data_dir, batch_size=int(batch_size), grid=1, **options
        )
    )
    compile_for_scoring(model)
    results = {}
    for grid in points:
        model.grid = grid
        metrics = model.evaluate(data, verbose=0, return_dict=True)
        results["%dx%d" % grid] = {
            "accuracy": float(metrics["accuracy"]),
            "loss": float(metrics["loss"]),
        }
    return results
