"""Pre-LayerNorm Transformer blocks with FAVOR+ attention, plain or in superposition
(docs/design.md section 3).

Three kinds, chosen by ``attention``:

* ``"performer"``: ``x + drop(attn(LN(x)))``, then ``x + MLP(LN(x))`` (the Performer baseline);
* ``"att"``: the same, with superposed attention (:class:`SuperposedFAVORAttention`); everything
  outside the attention core runs per input;
* ``"att+mlp"``: the whole block in superposition. The attention output stays bundled (N
  bundles per superposition), the residual stream is bound with bipolar keys of the embedding
  width and summed over m (:func:`superpose_stream`), the MLP runs on the bundles and at the
  end every (m, n) item is retrieved by multiplying with its key (:func:`retrieve_stream`).
  Attention and MLP cost drop by about M.

Batch order everywhere: input ``b' * M * N + m * N + n`` is grid cell ``(m, n)`` of
superposition ``b'``.
"""

import keras
from keras import ops

from keras_mimo.checks import positive_int
from keras_mimo.initializers import glorot_uniform
from keras_mimo.layers.attention import (
    ATTENTION_TYPES,
    BipolarKeys,
    GridCapacityConfig,
    MultiHeadFAVORAttention,
    _fresh_seed,
    check_grid,
)

LAYER_NORM_EPSILON = 1e-5  # torch's default, used by the reference


def superpose_stream(x, keys, grid):
    """Binds ``(B, L, C)`` items with ``keys[m, n]`` (``(M_cap, N_cap, C)``) and sums over m ->
    ``(B / M, L, C)``."""
    m, n = grid
    length, channels = ops.shape(x)[1], x.shape[-1]
    keys = ops.reshape(ops.cast(keys[:m, :n], x.dtype), (1, m, n, 1, channels))
    bound = ops.reshape(x, (-1, m, n, length, channels)) * keys
    return ops.reshape(ops.sum(bound, axis=1), (-1, length, channels))


def retrieve_stream(x, keys, grid):
    """Unbinds ``(B / M, L, C)`` bundles into every item: bundle n of a superposition times
    ``keys[m, n]`` -> ``(B, L, C)``."""
    m, n = grid
    length, channels = ops.shape(x)[1], x.shape[-1]
    keys = ops.reshape(ops.cast(keys[:m, :n], x.dtype), (1, m, n, 1, channels))
    items = ops.reshape(x, (-1, 1, n, length, channels)) * keys
    return ops.reshape(items, (-1, length, channels))


@keras.saving.register_keras_serializable(package="keras_mimo")
class MIMOFormerBlock(GridCapacityConfig, keras.layers.Layer):
    """One pre-LN encoder block: LN -> attention -> dropout + residual; LN -> MLP(ReLU) + residual.

    ``call(x, padding_mask=None, grid=None, training=None)`` on ``(batch, length, dim)`` returns the
    same shape; ``batch`` must be a multiple of M * N for the superposed kinds.

    Args:
        num_heads: H.
        head_dim: D.
        hidden_dim: width of the MLP's hidden layer.
        attention: "performer", "att" or "att+mlp" (see the module docstring).
        capacity: ``(M, N)`` the keys are made for (ignored by "performer").
        num_random_features: R.
        dropout: rate after the attention and in the MLP (after the ReLU and after the output).
        seed: seed of every initialiser and random quantity of the block.
    """

    def __init__(
        self,
        num_heads,
        head_dim,
        hidden_dim,
        attention="att",
        capacity=(2, 2),
        num_random_features=256,
        dropout=0.1,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = positive_int("num_heads", num_heads)
        self.head_dim = positive_int("head_dim", head_dim)
        self.hidden_dim = positive_int("hidden_dim", hidden_dim)
        if attention not in ATTENTION_TYPES:
            raise ValueError(f"attention={attention!r} is unknown: use one of {ATTENTION_TYPES}.")
        self.attention = attention
        self.capacity = (
            (1, 1) if attention == "performer" else check_grid(capacity, name="capacity")
        )
        self.num_random_features = positive_int("num_random_features", num_random_features)
        if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"dropout={dropout!r} must be a number in [0, 1).")
        self.dropout = float(dropout)
        self.seed = seed
        seeds = iter([None] * 8) if seed is None else iter(range(seed, seed + 64, 8))

        self.norm1 = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="norm1")
        self.attn = MultiHeadFAVORAttention(
            num_heads,
            head_dim,
            attention=attention,
            capacity=self.capacity,
            num_random_features=num_random_features,
            seed=next(seeds),
            name="attention",
        )
        self.attn_dropout = keras.layers.Dropout(
            self.dropout, seed=next(seeds), name="attention_dropout"
        )
        self.norm2 = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="norm2")
        self.mlp_hidden = keras.layers.Dense(
            hidden_dim,
            activation="relu",
            kernel_initializer=glorot_uniform(next(seeds)),
            name="mlp_hidden",
        )
        self.mlp_dropout1 = keras.layers.Dropout(
            self.dropout, seed=next(seeds), name="mlp_dropout1"
        )
        self._mlp_output_seed = next(seeds)
        self.mlp_dropout2 = keras.layers.Dropout(
            self.dropout, seed=next(seeds), name="mlp_dropout2"
        )
        self._stream_keys_seed = next(seeds)

    def build(self, input_shape):
        if self.built:
            return
        dim = input_shape[-1]
        if dim is None:
            raise ValueError(
                f"{self.name}: the embedding width must be known to build, got {input_shape}."
            )
        shape = (None, None, dim)
        self.norm1.build(shape)
        self.attn.build(shape)
        self.norm2.build(shape)
        self.mlp_hidden.build(shape)
        self.mlp_output = keras.layers.Dense(
            dim, kernel_initializer=glorot_uniform(self._mlp_output_seed), name="mlp_output"
        )
        self.mlp_output.build((None, None, self.hidden_dim))
        if self.attention == "att+mlp":
            self.stream_keys = self.add_weight(
                shape=self.capacity + (dim,),
                initializer=BipolarKeys(_fresh_seed(self._stream_keys_seed)),
                trainable=False,
                name="stream_keys",
            )
        self.built = True

    def _mlp(self, x, training):
        x = self.mlp_dropout1(self.mlp_hidden(self.norm2(x)), training=training)
        return self.mlp_dropout2(self.mlp_output(x), training=training)

    def call(self, x, padding_mask=None, grid=None, training=None):
        grid = check_grid(self.capacity if grid is None else grid, self.capacity)
        attended = self.attn_dropout(
            self.attn(self.norm1(x), padding_mask=padding_mask, grid=grid), training=training
        )
        if self.attention != "att+mlp":
            x = x + attended
            return x + self._mlp(x, training)
        x = attended + superpose_stream(x, self.stream_keys, grid)
        x = x + self._mlp(x, training)
        return retrieve_stream(x, self.stream_keys, grid)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            head_dim=self.head_dim,
            hidden_dim=self.hidden_dim,
            attention=self.attention,
            capacity=self.capacity,
            num_random_features=self.num_random_features,
            dropout=self.dropout,
            seed=self.seed,
        )
        return config
