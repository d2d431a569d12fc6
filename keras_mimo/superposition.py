"""What every superposed model shares: checking N, padding a batch to whole groups, switching N on a compiled model."""

import functools

import keras
import numpy as np
from keras import ops


def allowed_superpositions(capacity):
    """The divisors of ``capacity``: the numbers of inputs a model of that capacity can superpose."""
    return [n for n in range(1, capacity + 1) if capacity % n == 0]


def check_superposition(superposition, capacity):
    """Returns ``superposition`` as an int if it divides ``capacity``; raises a ValueError naming the allowed values otherwise."""
    allowed = allowed_superpositions(capacity)
    if (
        isinstance(superposition, bool)
        or not isinstance(superposition, (int, np.integer))
        or int(superposition) not in allowed
    ):
        raise ValueError(
            f"superposition={superposition!r} is not allowed for a model of capacity {capacity}: "
            f"it must be a divisor of the capacity, one of {allowed}."
        )
    return int(superposition)


def pad_to_multiple(x, n):
    """Pads the batch axis of ``x`` to a multiple of ``n`` by cycling through the last, incomplete group.

    Filling the last group with its own inputs (rather than zeros or other images) keeps any
    foreign signal out of that group's superposition; callers cut the outputs back to the
    original batch size, so nothing is dropped and nothing is added.
    """
    if n == 1:
        return x
    count = ops.shape(x)[0]
    remainder = count % n
    if isinstance(remainder, int) and remainder == 0:
        return x
    missing = (n - remainder) % n
    last_start = count - remainder
    indices = last_start + ops.arange(missing) % ops.maximum(remainder, 1)
    return ops.concatenate([x, ops.take(x, indices, axis=0)], axis=0)


class SwitchableSuperposition:
    """Mixin for keras.Model subclasses whose call depends on a Python-level operating point (N, or a grid).

    Keras caches compiled train/test/predict functions; a traced function has the operating
    point baked in. Switching stores the current functions under the old operating point and
    restores (or lets Keras rebuild) those of the new one, so a change takes effect on the
    next fit/evaluate/predict on every backend, and switching back and forth costs no retrace.
    """

    _FUNCTION_NAMES = ("train_function", "test_function", "predict_function")

    def _switch_operating_point(self, old, new):
        if old == new:
            return
        cache = self.__dict__.setdefault("_compiled_by_operating_point", {})
        cache[old] = {name: getattr(self, name, None) for name in self._FUNCTION_NAMES}
        restored = cache.get(new, {})
        for name in self._FUNCTION_NAMES:
            object.__setattr__(self, name, restored.get(name))
            if restored.get(name) is None and cache[old][name] is not None:
                # A fit/evaluate/predict loop in progress (a callback switching N per batch) reads the
                # function attribute at every step, so it must exist; tracing still waits for its first call.
                getattr(self, "make_" + name)()

    def _forget_compiled_functions(self):
        self.__dict__["_compiled_by_operating_point"] = {}

    def compile(self, *args, **kwargs):
        self._forget_compiled_functions()
        return super().compile(*args, **kwargs)

    def compile_from_config(self, config):
        """Restores a saved compile() (optimizer state included) on load, as Keras does for models whose compile is its own.

        Keras skips this for any class that overrides compile(); ours only resets the per-N cache first.
        """
        import keras_mimo.training.optimizers  # noqa: F401  registers what our trainers save: the optimizer
        import keras_mimo.training.schedules  # noqa: F401  and its schedules

        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def _sublayers_in_own_dtype_policy(self):
        """Sublayers created inside take the model's dtype policy, not the global one.

        A model saved under mixed precision records its policy; without this, load_model
        would rebuild its sublayers under whatever global policy is current (float32).
        """
        from keras_mimo.training.precision import global_dtype_policy

        return global_dtype_policy(self.dtype_policy)

    # JAX's trainer jits the bound method ``self.train_step`` / ``self.test_step``, and jax.jit
    # caches traces per function, so a rebuilt function would reuse the trace of the old
    # operating point. Handing each new build a fresh step object gives it a fresh trace.
    def _fresh_step(self, function_name, step_name, force):
        if force or getattr(self, function_name, None) is None:
            object.__setattr__(
                self, step_name, functools.partial(getattr(type(self), step_name), self)
            )

    def make_train_function(self, force=False):
        self._fresh_step("train_function", "train_step", force)
        return super().make_train_function(force)

    def make_test_function(self, force=False):
        self._fresh_step("test_function", "test_step", force)
        return super().make_test_function(force)

    def make_predict_function(self, force=False):
        self._fresh_step("predict_function", "predict_step", force)
        return super().make_predict_function(force)
