"""Unbinding: one pooled superposition vector -> one feature vector per input.

See docs/design.md section 2, step 7.
"""

import keras
from keras import ops

from keras_mimo.initializers import he_fan_out
from keras_mimo.superposition import check_superposition


@keras.saving.register_keras_serializable(package="keras_mimo")
class UnbindingHead(keras.layers.Layer):
    """Expands a pooled superposition into N_cap slot vectors; averages the slots of each input.

    Input ``(B, C)`` (B superpositions of N inputs each); output ``(B * N, C)`` in input order.
    The expansion is ``Dense(N_cap * C) + ReLU``; slot ``s`` held input ``s mod N``, so the
    ``N_cap / N`` slots of each input are averaged. With ``identity=True`` (no binding and a
    capacity of 1, i.e. a plain WideResNet) the features pass through unchanged.

    :class:`SuperpositionBinding` pads a batch that is not a multiple of N to whole groups.
    Pass the model's inputs (or any tensor whose first axis is the original batch) as
    ``original_inputs`` and the rows of that padding are cut off: one row per input, as many
    as the batch had. Without it all ``B * N`` rows come back, the padding's copies included.

    Args:
        capacity: number of superposition slots N_cap, that of the binding.
        identity: pass the features through (capacity 1 only).
        kernel_initializer: of the expansion (default: He fan-out normal).

    Call arguments:
        inputs: ``(B, C)`` pooled superpositions.
        superposition: N, a divisor of ``capacity`` (default: the capacity).
        original_inputs: optional; the unpadded batch (its first axis gives the row count).

    Example:
        >>> head = UnbindingHead(capacity=4)
        >>> pooled = np.ones((16, 32), "float32")  # 16 superpositions of 4 inputs: 64 rows
        >>> tuple(head(pooled, superposition=4).shape)
        (64, 32)
        >>> images = np.zeros((63, 8, 8, 3), "float32")  # the batch the binding padded to 64
        >>> tuple(head(pooled, superposition=4, original_inputs=images).shape)
        (63, 32)
    """

    def __init__(self, capacity, identity=False, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.capacity = int(capacity)
        self.identity = bool(identity)
        if self.identity and self.capacity != 1:
            raise ValueError(f"identity unbinding needs capacity 1, got capacity={capacity}.")
        self.kernel_initializer = keras.initializers.get(kernel_initializer or he_fan_out())
        self.expand = None

    def build(self, input_shape):
        if not self.identity:
            self.expand = keras.layers.Dense(
                self.capacity * input_shape[-1],
                activation="relu",
                kernel_initializer=self.kernel_initializer,
                name="expand",
            )
            self.expand.build(input_shape)

    def call(self, inputs, superposition=None, original_inputs=None):
        if self.identity:
            outputs = inputs
        else:
            n = check_superposition(
                self.capacity if superposition is None else superposition, self.capacity
            )
            features = inputs.shape[-1]
            slots = ops.reshape(self.expand(inputs), (-1, self.capacity // n, n, features))
            outputs = ops.reshape(ops.mean(slots, axis=1), (-1, features))
        if original_inputs is None:
            return outputs
        return outputs[: ops.shape(keras.tree.flatten(original_inputs)[0])[0]]

    def compute_output_shape(self, input_shape):
        return (None, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            capacity=self.capacity,
            identity=self.identity,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
