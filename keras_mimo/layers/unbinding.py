"""Unbinding: one pooled superposition vector -> one feature vector per input (DESIGN.md section 2, step 7)."""

import keras
from keras import ops

from keras_mimo.initializers import he_fan_out
from keras_mimo.superposition import check_superposition


@keras.saving.register_keras_serializable(package="keras_mimo")
class UnbindingHead(keras.layers.Layer):
    """Expands a pooled superposition into N_cap slot vectors and averages slots that held the same input.

    Input ``(B, C)`` (B superpositions of N inputs each); output ``(B * N, C)`` in input order.
    The expansion is ``Dense(N_cap * C) + ReLU``; slot ``s`` held input ``s mod N``, so the
    ``N_cap / N`` slots of each input are averaged. With ``identity=True`` (no binding and a
    capacity of 1, i.e. a plain WideResNet) the features pass through unchanged.
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

    def call(self, inputs, superposition=None):
        if self.identity:
            return inputs
        n = check_superposition(
            self.capacity if superposition is None else superposition, self.capacity
        )
        features = inputs.shape[-1]
        slots = ops.reshape(self.expand(inputs), (-1, self.capacity // n, n, features))
        return ops.reshape(ops.mean(slots, axis=1), (-1, features))

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
