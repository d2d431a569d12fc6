"""Binding and bundling: N feature maps -> one superposition (docs/design.md section 2, steps 2-4).

Every binding used here is linear in the input, position-wise and per slot, so it is a
channel matrix ``M_s`` applied at every pixel: HRR's circular convolution with key
``k_s`` is the circulant matrix of ``k_s``, MBAT's matrix is the key itself and "none" is
the identity. Binding all N_cap slots and summing them is then one matmul of the
slot-concatenated channels with the stacked matrices. When fewer inputs than slots are
superposed (slot ``s`` holds input ``s mod N``) the matrices of slots that share an input
are summed first, which is exactly the reference's repeat-then-bind-then-sum.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_mimo.checks import positive_int
from keras_mimo.initializers import SeededVarianceScaling
from keras_mimo.superposition import check_superposition, pad_to_multiple

BINDINGS = ("hrr", "mbat", "none")


@keras.saving.register_keras_serializable(package="keras_mimo")
class BindingRegularizer(keras.regularizers.Regularizer):
    """Keeps HRR keys quasi-orthonormal.

    ``weight * (mean over key pairs of squared cosine + mean squared deviation of key norms
    from 1)``, the reference's binding regulariser (weight 0.1 in the paper).

    Example:
        >>> penalty = BindingRegularizer(0.1)(np.eye(4, dtype="float32"))
        >>> float(penalty)  # orthonormal keys cost nothing
        0.0
    """

    def __init__(self, weight=0.1):
        self.weight = float(weight)

    def __call__(self, keys):
        count = keys.shape[0]
        norms = ops.sqrt(ops.sum(ops.square(keys), axis=-1))
        norm_term = ops.sum(ops.square(norms - 1.0)) / count
        if count == 1:
            return self.weight * norm_term
        unit = keys / ops.maximum(norms, 1e-12)[:, None]
        cosines = ops.triu(ops.matmul(unit, ops.transpose(unit)), k=1)
        pair_term = ops.sum(ops.square(cosines)) / (count * (count - 1) / 2)
        return self.weight * (pair_term + norm_term)

    def get_config(self):
        return {"weight": self.weight}


def circulant_indices(channels):
    """``idx[i, j] = (j - i) mod C``.

    ``key[idx]`` is the matrix M with ``x @ M == circular_convolution(x, key)``.

    Example:
        >>> circulant_indices(3).tolist()
        [[0, 1, 2], [2, 0, 1], [1, 2, 0]]
    """
    rows = np.arange(channels)[:, None]
    cols = np.arange(channels)[None, :]
    return ((cols - rows) % channels).astype("int32")


@keras.saving.register_keras_serializable(package="keras_mimo")
class SuperpositionBinding(keras.layers.Layer):
    """Binds each group of N consecutive feature maps to per-slot keys and sums the group.

    Input ``(S, H, W, C)``, any S; output ``(ceil(S / N), H, W, C)``, one superposition per
    group of N = ``superposition`` consecutive inputs (a call argument, default the capacity).
    A batch that is not a multiple of N is padded to whole groups first, the last group filled
    with its own inputs (:func:`keras_mimo.superposition.pad_to_multiple`), so no foreign
    input enters a superposition; pass ``original_inputs=`` to the :class:`UnbindingHead` to
    cut the unbound rows back to one per input. ``binding`` is ``"hrr"`` (position-wise
    circular convolution over channels with a trainable key per slot), ``"mbat"`` (a trainable
    C x C matrix per slot) or ``"none"`` (plain sum). Keys are weights: they are seeded,
    trained and saved with the model.

    Args:
        capacity: number of superposition slots N_cap; N may be any divisor of it.
        binding: "hrr", "mbat" or "none".
        regularization: weight of the binding regulariser on HRR keys (0 disables it).
        trainable_keys: whether the keys are trained.
        seed: seed of the key initialiser.

    Call arguments:
        inputs: ``(S, H, W, C)`` feature maps, one per input.
        superposition: N, a divisor of ``capacity`` (default: the capacity).

    Example:
        A functional model from the public layers; it takes any batch size:

        >>> import keras
        >>> from keras_mimo.layers import PreActWideBlock, SuperpositionBinding, UnbindingHead
        >>> images = keras.Input((8, 8, 3))
        >>> x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(images)
        >>> x = SuperpositionBinding(capacity=4, seed=0)(x, superposition=4)
        >>> x = PreActWideBlock(32, strides=2)(x)
        >>> x = keras.layers.GlobalAveragePooling2D()(x)
        >>> x = UnbindingHead(capacity=4)(x, superposition=4, original_inputs=images)
        >>> model = keras.Model(images, keras.layers.Dense(10)(x))
        >>> model.predict(np.zeros((63, 8, 8, 3)), verbose=0).shape
        (63, 10)
    """

    def __init__(
        self, capacity, binding="hrr", regularization=0.1, trainable_keys=True, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        if binding not in BINDINGS:
            raise ValueError(f"binding={binding!r} is unknown: use one of {BINDINGS}.")
        self.capacity = positive_int("capacity", capacity)
        self.binding = binding
        self.regularization = float(regularization)
        self.trainable_keys = bool(trainable_keys)
        self.seed = seed

    def build(self, input_shape):
        channels = input_shape[-1]
        initializer = SeededVarianceScaling(stddev=1.0 / math.sqrt(channels), seed=self.seed)
        if self.binding == "hrr":
            regularizer = BindingRegularizer(self.regularization) if self.regularization else None
            self.keys = self.add_weight(
                shape=(self.capacity, channels),
                initializer=initializer,
                regularizer=regularizer,
                trainable=self.trainable_keys,
                name="keys",
            )
            self._circulant = circulant_indices(channels)
        elif self.binding == "mbat":
            self.keys = self.add_weight(
                shape=(self.capacity, channels, channels),
                initializer=initializer,
                trainable=self.trainable_keys,
                name="keys",
            )

    def slot_matrices(self):
        """The per-slot channel matrices ``(N_cap, C, C)``, applied as ``x @ M``."""
        if self.binding == "hrr":
            return ops.take(self.keys, self._circulant, axis=1)
        if self.binding == "mbat":
            return self.keys
        raise ValueError("binding='none' has no key matrices.")

    def call(self, inputs, superposition=None):
        n = check_superposition(
            self.capacity if superposition is None else superposition, self.capacity
        )
        inputs = pad_to_multiple(inputs, n)
        repeats = self.capacity // n
        height, width, channels = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        groups = ops.reshape(inputs, (-1, n, height, width, channels))
        if self.binding == "none":
            return ops.sum(groups, axis=1) * float(repeats)
        matrices = ops.reshape(self.slot_matrices(), (repeats, n, channels, channels))
        matrices = ops.reshape(ops.sum(matrices, axis=0), (n * channels, channels))
        if n == 1:
            return ops.matmul(inputs, matrices)
        stacked = ops.reshape(
            ops.transpose(groups, (0, 2, 3, 1, 4)), (-1, height, width, n * channels)
        )
        return ops.matmul(stacked, matrices)

    def compute_output_shape(self, input_shape):
        return (None,) + tuple(input_shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update(
            capacity=self.capacity,
            binding=self.binding,
            regularization=self.regularization,
            trainable_keys=self.trainable_keys,
            seed=self.seed,
        )
        return config
