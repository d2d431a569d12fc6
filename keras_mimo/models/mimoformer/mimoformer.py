"""MIMOFormer: a linear-attention Transformer encoder on an M x N grid of superposed sequences.

See docs/design.md section 3.
"""

import keras
import numpy as np
from keras import ops

from keras_mimo.checks import positive_int
from keras_mimo.initializers import SeededVarianceScaling, glorot_uniform
from keras_mimo.layers.attention import ATTENTION_TYPES, check_grid
from keras_mimo.layers.transformer import LAYER_NORM_EPSILON, MIMOFormerBlock
from keras_mimo.presets.mixin import PresetMixin
from keras_mimo.superposition import SwitchableSuperposition, pad_to_multiple

POOLINGS = ("masked_mean", "mean")


@keras.saving.register_keras_serializable(package="keras_mimo")
class MIMOFormer(PresetMixin, SwitchableSuperposition, keras.Model):
    """Transformer encoder with FAVOR+ attention over an M x N grid of superposed sequences.

    Token ids ``(batch, length)`` (padding token 0; the mask is ``ids != 0``) -> token embedding
    + learned position embedding -> ``num_layers`` pre-LN blocks -> final LayerNorm -> pooling
    -> Dense(hidden_dim, ReLU) -> Dense(num_classes) logits, one row per sequence, in order
    (float32 also under mixed precision).
    With ``dual=True`` the model takes a pair ``(ids_0, ids_1)`` (LRA Retrieval), encodes both
    with the same encoder and classifies ``[x0, x1, x0 * x1, x0 - x1]``.

    ``attention``: ``"att"`` (attention in superposition, everything else per sequence),
    ``"att+mlp"`` (the whole block in superposition) or ``"performer"`` (no superposition: the
    Performer baseline, see :class:`Performer`).

    ``model.grid`` (``(M, N)``, any pair up to ``capacity``) can be changed at any time,
    compiled or not; a smaller grid uses the first ``M x N`` keys (the reference's MIMO
    warm-up, see :class:`~keras_mimo.models.mimoformer.MIMOWarmup`). A batch whose size is not
    a multiple of ``M * N`` is padded internally (the last group is filled with its own
    sequences) and cut back: every sequence gets its own row.

    Args:
        vocab_size: number of token ids (0 is padding).
        max_length: longest sequence (rows of the position embedding).
        num_classes: classifier outputs.
        embedding_dim: model width.
        hidden_dim: width of the blocks' MLP and of the classifier's hidden layer (the reference's
            transformer_hidden_dim).
        num_heads: attention heads.
        head_dim: width of one head.
        num_layers: encoder blocks (weights not tied).
        attention: "att", "att+mlp" or "performer".
        capacity: ``(M, N)`` the keys are made for ((1, 1) for "performer").
        grid: the grid at construction (default: the capacity).
        num_random_features: R of FAVOR+ (256 in the paper).
        dropout: rate after the embeddings, after attention and in the MLPs of the blocks.
        pooling: "masked_mean" (mean over the tokens) or "mean" (the reference: padding positions
            are zeroed and the mean runs over the whole length).
        dual: two-sequence input with the Retrieval head.
        seed: seed of every initialiser and random quantity (projections, keys), for
            repeatable models.

    Example:
        >>> import numpy as np
        >>> from keras_mimo.models import MIMOFormer
        >>> model = MIMOFormer(vocab_size=12, max_length=16, num_classes=3, embedding_dim=16,
        ...                    hidden_dim=32, num_layers=1, capacity=(2, 2), seed=0)
        >>> ids = np.random.default_rng(0).integers(1, 12, size=(7, 16))  # 7 sequences
        >>> model.predict(ids, verbose=0).shape  # grid 2 x 2: groups of 4, padded
        (7, 3)
        >>> model.grid = (1, 2)  # the first 1 x 2 keys; compiled functions switch too
        >>> model.predict(ids, verbose=0).shape
        (7, 3)
    """

    def __init__(
        self,
        vocab_size,
        max_length,
        num_classes=10,
        embedding_dim=64,
        hidden_dim=128,
        num_heads=2,
        head_dim=32,
        num_layers=2,
        attention="att",
        capacity=(2, 2),
        grid=None,
        num_random_features=256,
        dropout=0.1,
        pooling="masked_mean",
        dual=False,
        seed=None,
        **kwargs,
    ):
        vocab_size = positive_int("vocab_size", vocab_size)
        if vocab_size < 2:
            raise ValueError(
                f"vocab_size={vocab_size} must be at least 2: id 0 is the padding token."
            )
        max_length = positive_int("max_length", max_length)
        num_classes = positive_int("num_classes", num_classes)
        embedding_dim = positive_int("embedding_dim", embedding_dim)
        hidden_dim = positive_int("hidden_dim", hidden_dim)
        num_heads = positive_int("num_heads", num_heads)
        head_dim = positive_int("head_dim", head_dim)
        num_layers = positive_int("num_layers", num_layers)
        num_random_features = positive_int("num_random_features", num_random_features)
        if attention not in ATTENTION_TYPES:
            raise ValueError(f"attention={attention!r} is unknown: use one of {ATTENTION_TYPES}.")
        capacity = check_grid(capacity, name="capacity")
        if attention == "performer" and capacity != (1, 1):
            raise ValueError(
                "attention='performer' computes without superposition: capacity must be "
                f"(1, 1), got {capacity}."
            )
        grid = check_grid(capacity if grid is None else grid, capacity)
        if (
            not isinstance(dropout, (int, float))
            or isinstance(dropout, bool)
            or not 0 <= dropout < 1
        ):
            raise ValueError(f"dropout={dropout!r} must be a number in [0, 1).")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling={pooling!r} is unknown: use one of {POOLINGS}.")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed={seed!r} must be an integer or None.")
        super().__init__(**kwargs)

        self.vocab_size = vocab_size
        self.max_length = max_length
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.num_layers = num_layers
        self.attention = attention
        self.capacity = capacity
        self._grid = grid
        self.num_random_features = num_random_features
        self.dropout = float(dropout)
        self.pooling = pooling
        self.dual = bool(dual)
        self.seed = None if seed is None else int(seed)

        with self._sublayers_in_own_dtype_policy():

            def seed_at(offset):
                return None if self.seed is None else self.seed + offset

            embedding_init = lambda offset: SeededVarianceScaling(stddev=0.02, seed=seed_at(offset))  # noqa: E731
            self.token_embedding = keras.layers.Embedding(
                vocab_size,
                embedding_dim,
                embeddings_initializer=embedding_init(0),
                name="token_embedding",
            )
            self.position_embedding = keras.layers.Embedding(
                max_length,
                embedding_dim,
                embeddings_initializer=embedding_init(1),
                name="position_embedding",
            )
            self.embedding_dropout = keras.layers.Dropout(
                self.dropout, seed=seed_at(2), name="embedding_dropout"
            )
            self.blocks = [
                MIMOFormerBlock(
                    num_heads,
                    head_dim,
                    hidden_dim,
                    attention=attention,
                    capacity=capacity,
                    num_random_features=num_random_features,
                    dropout=self.dropout,
                    seed=seed_at(1000 * (i + 1)),
                    name=f"block{i + 1}",
                )
                for i in range(num_layers)
            ]
            self.final_norm = keras.layers.LayerNormalization(
                epsilon=LAYER_NORM_EPSILON, name="final_norm"
            )
            self.classifier_hidden = keras.layers.Dense(
                hidden_dim,
                activation="relu",
                kernel_initializer=glorot_uniform(seed_at(3)),
                name="classifier_hidden",
            )
            # Logits in the variable dtype (float32 under mixed precision), so losses stay stable.
            self.classifier = keras.layers.Dense(
                num_classes,
                kernel_initializer=glorot_uniform(seed_at(4)),
                dtype=self.dtype_policy.variable_dtype,
                name="classifier",
            )
            self.build(((None, None), (None, None)) if self.dual else (None, None))

    # ---------------------------------------------------------------- operating point
    @property
    def grid(self):
        """The superposition grid ``(M, N)``: M * N sequences share one attention.

        Any pair up to ``capacity`` element-wise.
        """
        return self._grid

    @grid.setter
    def grid(self, value):
        value = check_grid(value, self.capacity)
        self.switch_operating_point(self._grid, value)
        self._grid = value

    @property
    def superposition(self):
        """Sequences per superposition at the current grid, M * N."""
        return self._grid[0] * self._grid[1]

    # ---------------------------------------------------------------- graph
    def build(self, input_shape):
        if self.built:
            return
        token_shape = (None, None)
        self.token_embedding.build(token_shape)
        self.position_embedding.build(token_shape)
        shape = (None, None, self.embedding_dim)
        for block in self.blocks:
            block.build(shape)
        self.final_norm.build(shape)
        self.classifier_hidden.build((None, self.embedding_dim * (4 if self.dual else 1)))
        self.classifier.build((None, self.hidden_dim))
        self.built = True

    def encode(self, token_ids, training=None):
        """Pooled features ``(batch, embedding_dim)`` of token ids at the current grid.

        What the classifier head reads: one row per sequence, in order, for any batch size.

        Example:
            >>> model = MIMOFormer(vocab_size=12, max_length=16, embedding_dim=16, seed=0)
            >>> tuple(model.encode(np.ones((3, 16), "int32")).shape)
            (3, 16)
        """
        token_ids = self._check_tokens(token_ids)
        m, n = self._grid
        count = ops.shape(token_ids)[0]
        token_ids = pad_to_multiple(token_ids, m * n)
        length = ops.shape(token_ids)[1]
        mask = ops.cast(ops.not_equal(token_ids, 0), self.compute_dtype)
        x = self.token_embedding(token_ids) + self.position_embedding(ops.arange(length))[None]
        x = self.embedding_dropout(x, training=training)
        for block in self.blocks:
            x = block(x, padding_mask=mask, grid=self._grid, training=training)
        x = self.final_norm(x) * mask[:, :, None]
        if self.pooling == "masked_mean":
            pooled = ops.sum(x, axis=1) / ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)
        else:
            pooled = ops.mean(x, axis=1)
        return pooled[:count]

    def call(self, inputs, training=None):
        if self.dual:
            if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
                raise ValueError(
                    f"{self.name} was built with dual=True: pass a pair (token_ids_0, "
                    f"token_ids_1), got {type(inputs).__name__}."
                )
            x0 = self.encode(inputs[0], training=training)
            x1 = self.encode(inputs[1], training=training)
            features = ops.concatenate([x0, x1, x0 * x1, x0 - x1], axis=-1)
        else:
            if isinstance(inputs, (tuple, list)):
                raise ValueError(
                    f"{self.name} takes one batch of token ids; build it with dual=True for pairs."
                )
            features = self.encode(inputs, training=training)
        return self.classifier(self.classifier_hidden(features))

    def _check_tokens(self, token_ids):
        token_ids = ops.convert_to_tensor(token_ids)
        if len(token_ids.shape) != 2:
            raise ValueError(
                f"{self.name} expects token ids of shape (batch, length), "
                f"got {tuple(token_ids.shape)}."
            )
        length = token_ids.shape[1]
        if length is not None and length > self.max_length:
            raise ValueError(
                f"{self.name} was built for sequences of at most "
                f"max_length={self.max_length} tokens, got {length}."
            )
        if "int" not in str(token_ids.dtype):
            token_ids = ops.cast(token_ids, "int32")
        return token_ids

    def compute_output_shape(self, input_shape):
        first = input_shape[0] if self.dual else input_shape
        return (first[0], self.num_classes)

    # ---------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            max_length=self.max_length,
            num_classes=self.num_classes,
            embedding_dim=self.embedding_dim,
            hidden_dim=self.hidden_dim,
            num_heads=self.num_heads,
            head_dim=self.head_dim,
            num_layers=self.num_layers,
            attention=self.attention,
            capacity=self.capacity,
            grid=self._grid,
            num_random_features=self.num_random_features,
            dropout=self.dropout,
            pooling=self.pooling,
            dual=self.dual,
            seed=self.seed,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("capacity", "grid"):
            if config.get(name) is not None:
                config[name] = tuple(config[name])
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_mimo")
class Performer(MIMOFormer):
    """The Performer baseline: FAVOR+ with ReLU kernel, no superposition.

    A MIMOFormer with ``attention="performer"`` and capacity (1, 1): token ids in, one row of
    float32 logits per sequence out. Args are those of :class:`MIMOFormer` without attention,
    capacity and grid.

    Example:
        >>> import numpy as np
        >>> from keras_mimo.models import Performer
        >>> model = Performer(vocab_size=12, max_length=16, num_classes=3, embedding_dim=16,
        ...                   hidden_dim=32, num_layers=1, seed=0)
        >>> model.predict(np.ones((5, 16), "int32"), verbose=0).shape
        (5, 3)
    """

    def __init__(
        self,
        vocab_size,
        max_length,
        num_classes=10,
        embedding_dim=64,
        hidden_dim=128,
        num_heads=2,
        head_dim=32,
        num_layers=2,
        num_random_features=256,
        dropout=0.1,
        pooling="masked_mean",
        dual=False,
        seed=None,
        **kwargs,
    ):
        for fixed in ("attention", "capacity", "grid"):
            if fixed in kwargs:
                raise ValueError(
                    f"Performer does not take {fixed}=...: use keras_mimo.models.MIMOFormer "
                    "for that."
                )
        super().__init__(
            vocab_size,
            max_length,
            num_classes=num_classes,
            embedding_dim=embedding_dim,
            hidden_dim=hidden_dim,
            num_heads=num_heads,
            head_dim=head_dim,
            num_layers=num_layers,
            attention="performer",
            capacity=(1, 1),
            num_random_features=num_random_features,
            dropout=dropout,
            pooling=pooling,
            dual=dual,
            seed=seed,
            **kwargs,
        )

    def get_config(self):
        config = super().get_config()
        for fixed in ("attention", "capacity", "grid"):
            config.pop(fixed)
        return config
