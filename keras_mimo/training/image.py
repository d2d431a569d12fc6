"""The image family's part of the run loop: MIMOConv / WideResNet recipes as the paper trains them.

:class:`ImageTask` plugs into :func:`keras_mimo.training.train`: ``FilteredSGD`` with the cosine
one-cycle schedule, mixup before superposition, dynamic N per batch, validation at every N the
recipe lists, N passes over the training split per epoch at capacity N, the last partial batch
of each pass left out (a different random few each epoch, as the reference's ``drop_last``).
"""

import contextlib
import inspect
import re

import keras

from keras_mimo.checks import positive_int
from keras_mimo.registry import get_architecture, get_dataset
from keras_mimo.training import callbacks as cb
from keras_mimo.training.loop import Task, check_classes, compile_for_scoring, logged_column
from keras_mimo.training.optimizers import FilteredSGD
from keras_mimo.training.precision import mixed_precision_policy
from keras_mimo.training.schedules import one_cycle


def model_argument(recipe, name, absent):
    """The constructor argument ``name`` the recipe's model gets (its default if unset)."""
    architecture = get_architecture(recipe.architecture)
    parameter = inspect.signature(architecture.model_class()).parameters.get(name)
    if parameter is None:
        return absent
    return {**architecture.arguments, **recipe.model_overrides}.get(name, parameter.default)


def check_superpositions(recipe):
    """A ValueError unless every N the recipe validates at (and a dynamic run's lower N) fits."""
    from keras_mimo.superposition import allowed_superpositions

    capacity = model_argument(recipe, "capacity", 1)
    allowed = allowed_superpositions(capacity)
    wrong = [n for n in recipe.eval_superpositions or () if n not in allowed]
    if wrong:
        raise ValueError(
            f"eval_superpositions={recipe.eval_superpositions!r}: {recipe.name}'s model has "
            f"capacity {capacity}, so it can be validated at N in {allowed} only, not {wrong}."
        )
    if recipe.dynamic_p is not None and recipe.dynamic_low not in allowed:
        raise ValueError(
            f"dynamic_low={recipe.dynamic_low}: {recipe.name}'s model has capacity {capacity}, "
            f"so the lower N must be one of {allowed}."
        )


def check_isometry_every(recipe, every):
    """``every`` (lazy isometry regularisation) if the recipe's model can use it; else
    ValueError."""
    every = positive_int("isometry_every", every, hint=" (1: the penalty on every update)")
    if every > 1 and not model_argument(recipe, "isometry_regularization", 0.0):
        raise ValueError(
            f"isometry_every={every}: {recipe.name}'s model ({recipe.architecture}) has no "
            "isometry regulariser to apply lazily; leave it at 1."
        )
    return every


def image_precision_policy(mode):
    """The dtype policy of an image run for ``mixed_precision=mode`` (None: float32)."""
    policy = mixed_precision_policy(mode)
    if policy == "mixed_float16":
        raise ValueError(
            "mixed_precision='float16' is not available for the image recipes: it needs loss "
            "scaling, whose skipped overflow steps would shift the step counter that schedules "
            "and resuming rely on. Use 'bfloat16' (no loss scaling needed) or 'off'."
        )
    return policy


_STRATEGIES = {}


def distribution_scope(data_parallel):
    """(scope, replicas): ``scope()`` is a fresh context to build and compile under.

    On JAX the distribution is set globally (keras.distribution.set_distribution) and the
    scope is empty; on TensorFlow it is a MirroredStrategy's scope.
    """
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
        # One strategy per process and device set: a second MirroredStrategy in the same process
        # can mismatch collective instances with the first one.
        strategy = _STRATEGIES.get(devices)
        if strategy is None:
            strategy = _STRATEGIES[devices] = tf.distribute.MirroredStrategy(list(devices))
        return strategy.scope, strategy.num_replicas_in_sync
    raise ValueError(
        f"Data-parallel training is not supported on the {backend} backend yet: use "
        "KERAS_BACKEND=jax (keras.distribution.DataParallel) or KERAS_BACKEND=tensorflow "
        "(tf.distribute.MirroredStrategy), or train on one device without --data-parallel."
    )


def _clamp_split(dataset, split, data_dir):
    """'train[:64]' -> 'train' when the split holds 64 examples or fewer (tfds rejects such
    slices)."""
    from keras_mimo.data import load_image_split

    match = re.fullmatch(r"\s*(\w+)\[:(\d+)\]\s*", split)
    if not match:
        return split
    size = int(load_image_split(dataset, match.group(1), data_dir=data_dir).cardinality())
    return match.group(1) if 0 <= size <= int(match.group(2)) else split


def build_model(recipe, seed=None):
    """The recipe's model, sized for its dataset (input shape and classes from the data)."""
    from keras_mimo.data import image_dataset_spec

    spec = image_dataset_spec(recipe.dataset)
    overrides = dict(recipe.model_overrides)
    overrides.setdefault("num_classes", spec.num_classes)
    overrides["input_shape"] = spec.input_shape
    overrides.setdefault("seed", recipe.seed if seed is None else seed)
    return get_architecture(recipe.architecture).build(**overrides)


class ImageTask(Task):
    """Trains an image recipe (MIMOConv, WideResNet) in :func:`keras_mimo.training.train`."""

    # -- before the run folder exists
    def check(self):
        recipe = self.recipe
        if self.steps_cap is not None:
            positive_int("steps_per_epoch", self.steps_cap, hint=" (or leave it out: every batch)")
        check_superpositions(recipe)
        self.policy = image_precision_policy(self.mixed_precision)
        self.isometry_every = check_isometry_every(recipe, self.isometry_every)
        info = get_dataset(recipe.dataset)
        classes = recipe.model_overrides.get("num_classes")
        check_classes(classes, info, f"{recipe.name}'s model (num_classes={classes})")
        self._measure_data()

    def _measure_data(self):
        """Finds the data (a FileNotFoundError saying how to get them) and sizes an epoch."""
        from keras_mimo.data import load_image_split

        recipe, data_dir = self.recipe, self.data_dir
        self.recipe = recipe = recipe.replace(
            train_split=_clamp_split(recipe.dataset, recipe.train_split, data_dir),
            eval_split=_clamp_split(recipe.dataset, recipe.eval_split, data_dir),
        )
        self.capacity = model_argument(recipe, "capacity", 1)
        split = load_image_split(recipe.dataset, recipe.train_split, data_dir=data_dir)
        self.examples = int(split.cardinality())
        self.full_steps = self.examples // recipe.batch_size
        if self.full_steps == 0:
            raise ValueError(
                f"{recipe.train_split} of {get_dataset(recipe.dataset).title} holds fewer than "
                f"one batch of {recipe.batch_size * self.capacity} images: lower --batch-size."
            )
        self.steps_per_epoch = (
            self.full_steps if self.steps_cap is None else min(self.full_steps, int(self.steps_cap))
        )
        self.epochs = recipe.epochs
        self.total_steps = recipe.epochs * self.steps_per_epoch

    def run_config(self):
        config = self.recipe.to_dict()
        config.update(
            steps_per_epoch_cap=self.steps_cap,
            data_parallel=self.data_parallel,
            mixed_precision=self.policy or "float32",
            isometry_every=self.isometry_every,
        )
        return config

    # -- in the run folder
    def build_and_compile(self, jit_compile):
        from keras_mimo.data import image_eval_dataset

        recipe = self.recipe
        self.scope, self.replicas = distribution_scope(self.data_parallel)
        one_hot = bool(recipe.mixup_alpha)
        self.eval_superpositions = tuple(recipe.eval_superpositions or (self.capacity,))
        self.eval_data = image_eval_dataset(
            recipe.dataset,
            recipe.batch_size,
            self.capacity,
            data_dir=self.data_dir,
            split=recipe.eval_split,
            one_hot_labels=one_hot,
        )
        with self.scope():
            model = build_model(recipe)
            lr, momentum = one_cycle(
                recipe.lr,
                max(self.total_steps, 2),
                recipe.pct_start,
                recipe.div_factor,
                recipe.final_div_factor,
                recipe.base_momentum,
                recipe.max_momentum,
            )
            optimizer = FilteredSGD(
                lr,
                momentum=momentum,
                weight_decay=recipe.weight_decay,
                gradient_filter=recipe.gradient_filter,
                global_clipnorm=recipe.clipnorm,
            )
            if one_hot:
                loss = keras.losses.CategoricalCrossentropy(from_logits=True)
                accuracy = keras.metrics.CategoricalAccuracy("accuracy")
            else:
                loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                accuracy = keras.metrics.SparseCategoricalAccuracy("accuracy")
            model.compile(
                optimizer=optimizer, loss=loss, metrics=[accuracy], jit_compile=jit_compile
            )
        return model

    def callbacks(self, model, initial_epoch, verbose):
        recipe, callbacks = self.recipe, []
        if self.isometry_every > 1:  # before the validation, which must see the penalty at scale 1
            callbacks.append(cb.LazyIsometry(self.isometry_every))
        if recipe.dynamic_p is not None:
            callbacks.append(
                cb.DynamicSuperposition(
                    self.capacity, low=recipe.dynamic_low, p=recipe.dynamic_p, seed=recipe.seed
                )
            )
        return callbacks + [
            cb.GradientFilterCallback(verbose=1 if verbose else 0),
            cb.ScheduleLogger(),
            cb.MultiSuperpositionValidation(self.eval_data, self.eval_superpositions),
        ]

    def train_data(self, initial_epoch):
        """One stream of every remaining epoch, each drawn from (seed, epoch) alone, so a resumed
        run continues the data order of the uninterrupted one."""
        from keras_mimo.data import image_train_dataset

        recipe = self.recipe
        done_batches = initial_epoch * self.steps_per_epoch
        data_epochs = -(-recipe.epochs * self.steps_per_epoch // self.full_steps)
        return image_train_dataset(
            recipe.dataset,
            recipe.batch_size,
            self.capacity,
            data_dir=self.data_dir,
            split=recipe.train_split,
            seed=recipe.seed,
            augment=recipe.augment,
            mixup_alpha=recipe.mixup_alpha or None,
            one_hot_labels=bool(recipe.mixup_alpha),
            passes_per_epoch=self.capacity,
            drop_remainder=True,
            epochs=data_epochs,
            first_epoch=done_batches // self.full_steps,
        ).skip(done_batches % self.full_steps)

    def describe(self, model, output_dir):
        recipe, capacity = self.recipe, self.capacity
        line = (
            f"{recipe.name}: {recipe.description}\n  {model.count_params():,} parameters, "
            f"capacity {capacity}, {recipe.batch_size} superpositions "
            f"({recipe.batch_size * capacity} images) per batch, {self.steps_per_epoch} "
            f"steps/epoch, {recipe.epochs} epochs, {self.replicas} device(s), "
            f"{keras.config.dtype_policy().name}; output {output_dir}"
        )
        left_over = (self.examples - self.full_steps * recipe.batch_size) * capacity
        if left_over > 0:
            line += (
                f"\n  Each epoch leaves out the last {left_over} of its {self.examples * capacity} "
                "reshuffled images (a different random few every epoch), as the reference's "
                "drop_last: every batch keeps its shape."
            )
        return line

    def final_results(self, model, output_dir):
        validation = cb.MultiSuperpositionValidation(self.eval_data, self.eval_superpositions)
        validation.set_model(model)
        metrics = validation.evaluate_all()
        epoch_times = logged_column(output_dir, "epoch_time")
        n_values = self.eval_superpositions
        return dict(
            split=self.recipe.eval_split,
            epochs=len(epoch_times),
            train_time_s=round(sum(epoch_times), 1),
            accuracy={str(n): metrics[f"val_accuracy_n{n}"] for n in n_values},
            loss={str(n): metrics[f"val_loss_n{n}"] for n in n_values},
            parameters=int(model.count_params()),
        )

    def summary(self, results):
        accuracy = ", ".join(
            f"N={n}: {100 * value:.2f}%" for n, value in results["accuracy"].items()
        )
        return (
            f"{results['recipe']}: {results['split']} accuracy {accuracy}; "
            f"train time {results['train_time_s']:.0f} s"
        )


def evaluate_image(model, checkpoint, info, superpositions, data_dir, batch_size, split, verbose):
    """``evaluate`` for image datasets: ``{N: {"accuracy", "loss"}}``."""
    from keras_mimo.data import image_dataset_spec, image_eval_dataset
    from keras_mimo.superposition import check_superposition

    if not hasattr(model, "image_shape"):
        raise ValueError(
            f"{checkpoint} holds a {type(model).__name__}, which reads token sequences: evaluate "
            "it on a Long Range Arena task (listops, text, retrieval, image, pathfinder)."
        )
    check_classes(getattr(model, "num_classes", None), info, f"{checkpoint}'s model")
    expected = tuple(image_dataset_spec(info.name).input_shape)
    if tuple(model.image_shape) != expected:
        raise ValueError(
            f"{checkpoint}'s model takes {tuple(model.image_shape)} images, but {info.title} "
            f"gives {expected}: evaluate it on the dataset it was trained on."
        )
    capacity = getattr(model, "capacity", 1)
    values = [check_superposition(n, capacity) for n in (superpositions or [capacity])]
    compile_for_scoring(model)
    data = image_eval_dataset(info.name, batch_size, capacity, data_dir=data_dir, split=split)
    results = {}
    for n in values:
        model.superposition = n
        metrics = model.evaluate(data, verbose=verbose, return_dict=True)
        results[n] = {"accuracy": float(metrics["accuracy"]), "loss": float(metrics["loss"])}
    return results
