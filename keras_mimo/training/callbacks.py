"""Keras callbacks of the paper's training loop; all work inside ``model.fit`` on TensorFlow, JAX
and PyTorch.

Callbacks that add entries to the epoch logs (``GradientFilterCallback``, ``ScheduleLogger``,
``MultiSuperpositionValidation``) must come before ``CSVLogger``, ``TensorBoard`` and the
checkpoint callbacks in the list, so that those see the entries (Keras passes one logs dict
along the list; the progress bar and History always come last).
"""

import contextlib
import json
import math
import os
import tempfile

import keras
import numpy as np
from keras import ops

from keras_mimo.checks import positive_int


# ---------------------------------------------------------------------------------------- files
@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path in ``path``'s folder (same suffix); on success it replaces ``path``
    with ``os.replace``.

    A reader never sees a half-written ``path``: it is either the old complete file or the new one.
    If the writer raises, the temporary file is removed and ``path`` is left untouched.
    """
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = ".weights.h5" if name.endswith(".weights.h5") else os.path.splitext(name)[1]
    handle, temporary = tempfile.mkstemp(prefix=f".tmp-{name}-", suffix=suffix, dir=folder)
    os.close(handle)
    os.remove(temporary)  # writers such as model.save refuse or append to an existing file
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def write_json_atomic(path, payload):
    with atomic_path(path) as temporary:
        with open(temporary, "w") as stream:
            json.dump(payload, stream, indent=2, sort_keys=True)


def _scalar(value):
    return float(ops.convert_to_numpy(value))


# ---------------------------------------------------------------------------------- gradient filter
class GradientFilterCallback(keras.callbacks.Callback):
    """Closes each epoch of ``FilteredSGD``'s gradient filter and logs it.

    At every epoch end: the threshold for the next epoch becomes factor x this epoch's mean
    norm of accepted updates, and the logs get ``skipped_updates`` (this epoch),
    ``skipped_updates_total`` and ``mean_grad_norm``; a line is printed when updates were skipped.
    """

    def __init__(self, verbose=1):
        super().__init__()
        self.verbose = verbose

    def on_epoch_end(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not hasattr(optimizer, "end_epoch"):
            return
        summary = optimizer.end_epoch()
        if not summary or logs is None:
            return
        logs["skipped_updates"] = summary["skipped_updates"]
        logs["skipped_updates_total"] = summary["skipped_updates_total"]
        logs["mean_grad_norm"] = summary["mean_grad_norm"]
        if self.verbose and summary["skipped_updates"]:
            print(
                f"Epoch {epoch + 1}: gradient filter skipped "
                f"{summary['skipped_updates']} update(s) "
                f"(next threshold {summary['filter_threshold']:.4g})."
            )


class ScheduleLogger(keras.callbacks.Callback):
    """Puts the optimizer's current ``learning_rate`` (and ``momentum`` / ``beta_1`` when scheduled)
    and ``iterations`` in the epoch logs."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        optimizer = self.model.optimizer
        logs["learning_rate"] = _scalar(optimizer.learning_rate)
        if hasattr(optimizer, "current_momentum"):
            logs["momentum"] = _scalar(optimizer.current_momentum())
        if hasattr(optimizer, "current_beta_1"):
            logs["beta_1"] = _scalar(optimizer.current_beta_1())
        logs["iterations"] = int(_scalar(optimizer.iterations))


# ------------------------------------------------------------------------------------ superposition
class DynamicSuperposition(keras.callbacks.Callback):
    """Dynamic superposition training: each training batch runs at N = ``capacity`` with probability
    ``p``, else at ``low``.

    The paper's dynamic MIMOConv uses capacity 4, p = 0.8, low = 1. The choice is drawn in
    ``on_train_batch_begin`` from a NumPy generator seeded with ``(seed, epoch)`` (so a resumed
    run draws the same choices as an uninterrupted one), and switches ``model.superposition``,
    which takes effect at that very batch on every backend. ``used`` lists the N of every batch.
    At the end of training the model is left at ``capacity``.
    """

    def __init__(self, capacity, low=1, p=0.8, seed=0):
        super().__init__()
        if capacity % low:
            raise ValueError(f"low={low} must divide capacity={capacity}.")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p={p!r} must be a probability.")
        self.capacity, self.low, self.p, self.seed = int(capacity), int(low), float(p), int(seed)
        self.used = []
        self._rng = None

    def on_epoch_begin(self, epoch, logs=None):
        self._rng = np.random.default_rng([self.seed, epoch])

    def on_train_batch_begin(self, batch, logs=None):
        if self._rng is None:
            self._rng = np.random.default_rng([self.seed, 0])
        n = self.capacity if self._rng.random() < self.p else self.low
        self.model.superposition = n
        self.used.append(n)

    def on_epoch_end(self, epoch, logs=None):
        self.model.superposition = self.capacity

    def on_train_end(self, logs=None):
        self.model.superposition = self.capacity


class LazyIsometry(keras.callbacks.Callback):
    """Lazy isometry regularisation: the penalty on every ``every``-th update only, weighted
    ``every``.

    The isometry penalty costs the same whatever the batch (on a width-2 MIMONet-10, about a third
    of a training step on the TensorFlow CPU backend); on average this adds the same gradient for
    1/every of the cost (lazy regularisation, as StyleGAN2 does for its R1 penalty). Batch b of
    each epoch is regularised when ``b % every == 0``, so a resumed run (which restarts at an
    epoch boundary) keeps the pattern. Sets ``model.isometry_scale`` per batch; each scale keeps
    its own compiled step, so the skipped updates do not compute the penalty at all. ``used``
    lists the scale of every batch. The scale is back to 1 for validation and at the end.
    """

    def __init__(self, every):
        super().__init__()
        self.every = positive_int("every", every, hint=" (1: the penalty on every update)")
        self.used = []

    def on_train_batch_begin(self, batch, logs=None):
        scale = float(self.every) if batch % self.every == 0 else 0.0
        self.model.isometry_scale = scale
        self.used.append(scale)

    def on_epoch_end(self, epoch, logs=None):
        self.model.isometry_scale = 1.0

    def on_train_end(self, logs=None):
        self.model.isometry_scale = 1.0


class MultiSuperpositionValidation(keras.callbacks.Callback):
    """Evaluates at every N in ``superpositions`` at each epoch end: ``val_loss_n{N}``,
    ``val_accuracy_n{N}`` (+ other metrics).

    ``primary`` (default: the first N) is also reported as plain ``val_loss`` / ``val_accuracy``.
    The model's N during training is restored afterwards. For a MIMOFormer pass grids and
    ``attribute="grid"``: the entries are then ``val_accuracy_grid{M}x{N}``. ``steps`` caps the
    validation batches (the LRA recipes' ``num_eval_steps``).
    """

    def __init__(
        self,
        validation_data,
        superpositions,
        primary=None,
        steps=None,
        frequency=1,
        attribute="superposition",
    ):
        super().__init__()
        self.validation_data = validation_data
        self.attribute = attribute
        self.superpositions = [self._point(n) for n in superpositions]
        self.primary = self.superpositions[0] if primary is None else self._point(primary)
        self.steps = steps
        self.frequency = int(frequency)

    @staticmethod
    def _point(value):
        return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else int(value)

    @staticmethod
    def label(point):
        """'n4' for N = 4, 'grid2x2' for the grid (2, 2): the suffix of the log entries."""
        return "grid" + "x".join(str(v) for v in point) if isinstance(point, tuple) else f"n{point}"

    def evaluate_all(self):
        results = {}
        previous = getattr(self.model, self.attribute)
        try:
            for n in self.superpositions:
                setattr(self.model, self.attribute, n)
                metrics = self.model.evaluate(
                    self.validation_data, steps=self.steps, verbose=0, return_dict=True
                )
                for name, value in metrics.items():
                    results[f"val_{name}_{self.label(n)}"] = float(value)
                    if n == self.primary:
                        results[f"val_{name}"] = float(value)
        finally:
            setattr(self.model, self.attribute, previous)
        return results

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or (epoch + 1) % self.frequency:
            return
        logs.update(self.evaluate_all())


# -------------------------------------------------------------------------------------- checkpoints
class AtomicCheckpoint(keras.callbacks.Callback):
    """Writes ``last.keras`` after every epoch and ``best.keras`` when ``monitor`` improves,
    atomically, plus ``state.json``.

    Both are full ``.keras`` files (architecture, weights and the optimizer's state, step counter
    and filter state included), each written to a temporary file in the same folder and moved in
    place with ``os.replace``: a crash or SIGKILL at any moment leaves either the previous or the
    new complete file. ``state.json`` (also atomic) records the last completed epoch and the best
    value so far; resuming reads the epoch from the restored step counter, which lives inside the
    checkpoint itself, so the two files cannot disagree about where training stands.
    """

    def __init__(self, directory, monitor="val_accuracy", mode="max", steps_per_epoch=None):
        super().__init__()
        self.directory = os.fspath(directory)
        self.monitor = monitor
        if mode not in ("max", "min"):
            raise ValueError(f"mode={mode!r} must be 'max' or 'min'.")
        self.mode = mode
        self.steps_per_epoch = steps_per_epoch
        self.best = None
        self.best_epoch = None
        state = read_state(self.directory)
        if state:
            self.best, self.best_epoch = state.get("best"), state.get("best_epoch")

    @property
    def last_path(self):
        return os.path.join(self.directory, "last.keras")

    @property
    def best_path(self):
        return os.path.join(self.directory, "best.keras")

    def _improved(self, value):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        value = logs.get(self.monitor)
        value = None if value is None else float(value)
        if self._improved(value):
            with atomic_path(self.best_path) as temporary:
                self.model.save(temporary)
            self.best, self.best_epoch = value, epoch
        with atomic_path(self.last_path) as temporary:
            self.model.save(temporary)
        write_json_atomic(
            os.path.join(self.directory, "state.json"),
            dict(
                epochs_completed=epoch + 1,
                monitor=self.monitor,
                mode=self.mode,
                best=self.best,
                best_epoch=self.best_epoch,
                iterations=int(_scalar(self.model.optimizer.iterations)),
            ),
        )


def read_state(directory):
    """The ``state.json`` an ``AtomicCheckpoint`` wrote in ``directory`` (None if there is none)."""
    path = os.path.join(os.fspath(directory), "state.json")
    if not os.path.exists(path):
        return None
    with open(path) as stream:
        return json.load(stream)
