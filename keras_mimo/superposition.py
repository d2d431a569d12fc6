"""What every superposed model shares: checking N, padding a batch to whole groups, switching N.

The ready models (MIMOConv, MIMOFormer) rest on these, and so can models of your own:

* :func:`check_superposition` validates N against a capacity;
* :func:`pad_to_multiple` pads a batch to whole groups of N (``SuperpositionBinding`` does it
  for you, and ``UnbindingHead(..., original_inputs=...)`` cuts the rows back);
* :class:`SwitchableSuperposition` makes ``model.superposition = n`` take effect on a compiled
  model, in fit, evaluate and predict, on every backend.
"""

import functools

import keras
import numpy as np
from keras import ops


def allowed_superpositions(capacity):
    """The divisors of ``capacity``: the numbers of inputs a model of that capacity can superpose.

    Example:
        >>> allowed_superpositions(4)
        [1, 2, 4]
    """
    return [n for n in range(1, capacity + 1) if capacity % n == 0]


def check_superposition(superposition, capacity):
    """``superposition`` as an int if it divides ``capacity``; else a ValueError naming the choices.

    Example:
        >>> check_superposition(2, 4)
        2
        >>> check_superposition(3, 4)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: superposition=3 is not allowed for a model of capacity 4: ... [1, 2, 4].
    """
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
    """Pads the batch axis of ``x`` to a multiple of ``n``, cycling through the last, partial group.

    Filling the last group with its own inputs (rather than zeros or other images) keeps any
    foreign signal out of that group's superposition; callers cut the outputs back to the
    original batch size, so nothing is dropped and nothing is added. Works on static and dynamic
    (traced) batch sizes on every backend; a batch that is a multiple of ``n`` comes back as is.

    Example:
        >>> x = np.arange(5).reshape(5, 1)
        >>> keras.ops.convert_to_numpy(pad_to_multiple(x, 4))[:, 0].tolist()
        [0, 1, 2, 3, 4, 4, 4, 4]
        >>> keras.ops.convert_to_numpy(pad_to_multiple(x[:3], 2))[:, 0].tolist()
        [0, 1, 2, 2]
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
    """Mixin for ``keras.Model`` subclasses whose call depends on a Python-level operating point.

    The operating point is N (``model.superposition``) or anything else the traced step bakes
    in (MIMOFormer's grid, MIMOConv's isometry scale). Keras caches compiled train/test/predict
    functions, and a traced function has the operating point baked in. Switching stores the
    current functions under the old operating point and restores (or lets Keras rebuild) those
    of the new one, so a change takes effect on the next fit/evaluate/predict on every backend,
    also from a callback between two batches, and switching back and forth costs no retrace.

    Contract for a subclass: list the mixin before ``keras.Model``; set ``self.capacity`` in
    ``__init__`` before anything reads ``superposition``; read ``self.superposition`` in
    ``call``. The mixin's ``superposition`` property then accepts any divisor of the capacity
    (default: the capacity). A model whose operating point is richer than N defines its own
    property and calls :meth:`switch_operating_point` with the old and the new point before
    storing the new one (as MIMOConv and MIMOFormer do). A functional model
    (``keras.Model(inputs, outputs)``) cannot switch: its N is fixed when its graph is built.

    Example:
        A MIMOConv-like model of your own that pads, superposes, unbinds and switches N::

            import keras
            from keras_mimo.layers import PreActWideBlock, SuperpositionBinding, UnbindingHead
            from keras_mimo.superposition import SwitchableSuperposition

            class SmallMIMO(SwitchableSuperposition, keras.Model):
                def __init__(self, capacity=4, num_classes=10, **kwargs):
                    super().__init__(**kwargs)
                    self.capacity = capacity
                    self.stem = keras.layers.Conv2D(16, 3, padding="same", activation="relu")
                    self.bind = SuperpositionBinding(capacity)
                    self.body = PreActWideBlock(32, strides=2)
                    self.pool = keras.layers.GlobalAveragePooling2D()
                    self.unbind = UnbindingHead(capacity)
                    self.classifier = keras.layers.Dense(num_classes)

                def call(self, images, training=None):
                    n = self.superposition
                    x = self.bind(self.stem(images), superposition=n)  # pads to whole groups
                    x = self.pool(self.body(x, training=training))
                    # one row per image again, the padding cut off
                    x = self.unbind(x, superposition=n, original_inputs=images)
                    return self.classifier(x)

            model = SmallMIMO()
            model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.fit(images, labels, batch_size=64)  # any batch size, at N = 4
            model.superposition = 2  # the compiled functions of N = 2 from now on
            logits = model.predict(images)
    """

    _FUNCTION_NAMES = ("train_function", "test_function", "predict_function")

    @property
    def superposition(self):
        """How many inputs share one superposition (N): any divisor of ``capacity``."""
        return self.__dict__.get("_superposition", self.capacity)

    @superposition.setter
    def superposition(self, value):
        value = check_superposition(value, self.capacity)
        self.switch_operating_point(self.superposition, value)
        self._superposition = value

    def switch_operating_point(self, old, new):
        """Files the compiled functions under ``old`` and brings back those of ``new`` (if any).

        Call it from a setter before storing the new operating point; ``old == new`` does
        nothing. Operating points are any hashable values (N, a grid, a tuple of both).
        """
        if old == new:
            return
        cache = self.__dict__.setdefault("_compiled_by_operating_point", {})
        cache[old] = {name: getattr(self, name, None) for name in self._FUNCTION_NAMES}
        restored = cache.get(new, {})
        for name in self._FUNCTION_NAMES:
            object.__setattr__(self, name, restored.get(name))
            if restored.get(name) is None and cache[old][name] is not None:
                # A fit/evaluate/predict loop in progress (a callback switching N per batch)
                # reads the function attribute at every step, so it must exist; tracing still
                # waits for its first call.
                getattr(self, "make_" + name)()

    def _forget_compiled_functions(self):
        self.__dict__["_compiled_by_operating_point"] = {}

    def compile(self, *args, **kwargs):
        self._forget_compiled_functions()
        return super().compile(*args, **kwargs)

    def compile_from_config(self, config):
        """Restores a saved compile() (optimizer state included) on load.

        Keras does this itself for models whose compile() is its own, and skips it for any class
        that overrides compile(); ours only resets the per-N cache first.
        """
        # Registers what our trainers save: the optimizer and its schedules.
        import keras_mimo.training.optimizers  # noqa: F401
        import keras_mimo.training.schedules  # noqa: F401

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
