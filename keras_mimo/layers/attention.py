"""FAVOR+ random-feature attention and its superposed forms (docs/design.md section 3).

Every attention core here takes queries, keys and values already split into heads,
``(batch, length, heads, head_dim)``, and a padding mask ``(batch, length)`` (1 = token,
0 = padding). The kernel is the Performer's generalised ReLU kernel

    phi(x) = relu(D^-1/4 * x @ P^T) + epsilon,

with P a fixed ``(R, D)`` Gaussian orthogonal random matrix. Queries and keys are scaled by
``D^-1/4`` before phi (so ``D^-1/2`` in all), as in the reference. Padding is removed the
reference's way: keys and values are multiplied by the mask before the kernel, so a padded
key still adds ``phi(0) = epsilon`` per feature to the normaliser (the number of padded
positions matters a little, their content does not). Queries are not masked, as in the
reference: in plain FAVOR+ a padded query only makes its own output, but in superposition a
query bundle sums the queries of all M grid rows at a position, padded or not.

Superposition ('att.', :class:`SuperposedFAVORAttention`) works on an M x N grid of inputs
(``batch`` a multiple of M * N; input ``b' * M * N + m * N + n`` sits at grid cell
``(m, n)`` of superposition ``b'``), with fixed bipolar keys ``b[m, n]`` in {-1, +1}^D
shared by all heads and positions. Queries are bound and summed over m (N query bundles),
keys and values over n (M key/value bundles); one state ``A = sum_m phi(k~_m)^T v~_m`` then
serves all M * N inputs. With ``bundled_output=True`` (the 'att.+MLP' block) the output
stays superposed: one row per query bundle. Key ``b[0, 0]`` is all ones, so a 1 x 1 grid is
exactly plain FAVOR+ with the same projection.

The projection P and the keys are non-trainable weights created from a seed, so they are
saved with the model and a reloaded model computes bit-identical outputs.
"""

import math

import keras
import numpy as np
from keras import ops

from keras_mimo.checks import positive_int
from keras_mimo.initializers import glorot_uniform

KERNEL_EPSILON = 1e-3


# --------------------------------------------------------------------------- random quantities
def gaussian_orthogonal_random_matrix(rows, columns, seed=None):
    """A ``(rows, columns)`` float32 numpy matrix: blocks of ``columns`` orthonormal rows, each row
    scaled by a chi norm.

    The FAVOR+ projection (Choromanski et al. 2021): stacked orthonormal blocks (the last block
    truncated), row ``i`` multiplied by the norm of an independent standard Gaussian vector of
    length ``columns``, so every row has the length distribution of a Gaussian row.
    """
    rng = np.random.default_rng(seed)
    blocks = []
    for _ in range(math.ceil(rows / columns)):
        q, r = np.linalg.qr(rng.standard_normal((columns, columns)))
        q = q * np.sign(np.diag(r))[None, :]  # a Haar-distributed orthogonal matrix
        blocks.append(q.T)
    matrix = np.concatenate(blocks, axis=0)[:rows]
    norms = np.linalg.norm(rng.standard_normal((rows, columns)), axis=1)
    return (norms[:, None] * matrix).astype("float32")


def bipolar_keys(shape, seed=None):
    """Random {-1, +1} float32 keys of ``shape`` (..., dim); the first key (index 0 on every leading
    axis) is all ones.

    Fixing the first key changes nothing in distribution (flipping the signs of coordinates of
    all keys at once is absorbed by the random projection and by the unbinding), and it makes a
    1 x 1 grid compute exactly plain FAVOR+ with the same projection.
    """
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 2, size=shape).astype("float32") * 2.0 - 1.0
    keys.reshape(-1, shape[-1])[0] = 1.0
    return keys


@keras.saving.register_keras_serializable(package="keras_mimo")
class GaussianOrthogonalRandom(keras.initializers.Initializer):
    """Initialiser of FAVOR+ projections, shape ``(R, D)``: see
    :func:`gaussian_orthogonal_random_matrix`.

    Drawn with numpy from ``seed``, so the same seed gives the same matrix on every backend.
    """

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(
                f"GaussianOrthogonalRandom makes (features, dim) matrices, got shape {shape}."
            )
        return ops.convert_to_tensor(
            gaussian_orthogonal_random_matrix(shape[0], shape[1], self.seed), dtype=dtype
        )

    def get_config(self):
        return {"seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_mimo")
class BipolarKeys(keras.initializers.Initializer):
    """Initialiser of fixed bipolar binding keys: see :func:`bipolar_keys`."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        return ops.convert_to_tensor(bipolar_keys(tuple(shape), self.seed), dtype=dtype)

    def get_config(self):
        return {"seed": self.seed}


def _fresh_seed(seed):
    """``seed`` itself, or (for None) a seed drawn now, so that random weights always come from one
    number."""
    return int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else seed


# --------------------------------------------------------------------------- checks
class GridCapacityConfig:
    """Mixin: ``from_config`` turns the JSON list ``capacity`` back into the ``(M, N)`` tuple the
    constructor takes."""

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["capacity"] = tuple(config["capacity"])
        return cls(**config)


def check_grid(grid, capacity=None, name="grid"):
    """Returns ``grid`` as a tuple ``(M, N)`` of positive ints (not above ``capacity``); a
    ValueError otherwise."""
    ok = (
        isinstance(grid, (tuple, list))
        and len(grid) == 2
        and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in grid
        )
    )
    if not ok:
        raise ValueError(
            f"{name}={grid!r} must be a pair (M, N) of positive integers, e.g. (2, 2)."
        )
    grid = (int(grid[0]), int(grid[1]))
    if capacity is not None and (grid[0] > capacity[0] or grid[1] > capacity[1]):
        raise ValueError(
            f"{name}={grid} does not fit the capacity {tuple(capacity)} the model was built with: "
            f"M must be at most {capacity[0]} and N at most {capacity[1]}."
        )
    return grid


def _check_heads(name, query, key, value):
    shapes = [tuple(t.shape) for t in (query, key, value)]
    if any(len(s) != 4 for s in shapes):
        raise ValueError(
            f"{name} expects query, key and value of shape (batch, length, heads, head_dim), "
            f"got {shapes}."
        )
    if shapes[0][2:] != shapes[1][2:] or shapes[0][2:] != shapes[2][2:]:
        raise ValueError(
            f"{name}: query, key and value must have the same heads and head_dim, got {shapes}."
        )


# --------------------------------------------------------------------------- FAVOR+
@keras.saving.register_keras_serializable(package="keras_mimo")
class FAVORAttention(keras.layers.Layer):
    """Non-causal FAVOR+ attention with the ReLU kernel (the Performer baseline's attention core).

    ``call(query, key, value, padding_mask=None)`` on ``(batch, length, heads, head_dim)`` tensors
    returns the same shape:
    ``out_l = phi(q_l) (sum_j phi(k_j) v_j^T) / (phi(q_l) . sum_j phi(k_j))``.

    Args:
        num_random_features: R, rows of the random projection (256 in the paper).
        epsilon: added to every kernel feature (1e-3 in the reference).
        seed: seed of the projection; None draws one (the projection is saved either way).
    """

    def __init__(self, num_random_features=256, epsilon=KERNEL_EPSILON, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_random_features = positive_int("num_random_features", num_random_features)
        if not isinstance(epsilon, (int, float)) or epsilon < 0:
            raise ValueError(f"epsilon={epsilon!r} must be a number >= 0.")
        self.epsilon = float(epsilon)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"seed={seed!r} must be an integer or None.")
        self.seed = None if seed is None else int(seed)

    def build(self, query_shape, key_shape=None, value_shape=None):
        if self.built:
            return
        head_dim = query_shape[-1]
        if head_dim is None:
            raise ValueError(
                f"{self.name}: the head dimension must be known to build, got {query_shape}."
            )
        self.head_dim = int(head_dim)
        self.projection = self.add_weight(
            shape=(self.num_random_features, self.head_dim),
            initializer=GaussianOrthogonalRandom(_fresh_seed(self.seed)),
            trainable=False,
            name="projection",
        )
        self.built = True

    def features(self, x):
        """phi(x) = relu(D^-1/4 x @ P^T) + epsilon over the last axis."""
        projection = ops.cast(self.projection, x.dtype)
        dash = ops.matmul(x * (self.head_dim**-0.25), ops.transpose(projection))
        return ops.relu(dash) + self.epsilon

    def _prepare(self, query, key, value, mask, extra_scale=1.0):
        """Casts to float32 (the reference runs attention outside autocast), scales q, k and
        masks k, v."""
        query, key, value = (ops.cast(t, "float32") for t in (query, key, value))
        scale = 1.0 / (math.sqrt(math.sqrt(self.head_dim)) * extra_scale)
        query = query * scale
        key = key * scale
        if mask is not None:
            mask = ops.cast(mask, "float32")[:, :, None, None]
            key = key * mask
            value = value * mask
        return query, key, value

    def call(self, query, key, value, padding_mask=None):
        _check_heads(self.name, query, key, value)
        out_dtype = query.dtype
        query, key, value = self._prepare(query, key, value, padding_mask)
        q = self.features(query)  # (B, L, H, R)
        k = self.features(key)
        context = ops.einsum("blhr,blhd->bhrd", k, value)
        normaliser = ops.einsum("blhr,bhr->blh", q, ops.sum(k, axis=1))
        out = ops.einsum("blhr,bhrd->blhd", q, context) / normaliser[..., None]
        return ops.cast(out, out_dtype)

    def compute_output_shape(self, query_shape, key_shape=None, value_shape=None):
        return tuple(query_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_random_features=self.num_random_features, epsilon=self.epsilon, seed=self.seed
        )
        return config


@keras.saving.register_keras_serializable(package="keras_mimo")
class SuperposedFAVORAttention(GridCapacityConfig, FAVORAttention):
    """FAVOR+ attention over an M x N grid of inputs in superposition ('att.', MIMOFormer).

    ``call(query, key, value, padding_mask=None, grid=None)``: inputs
    ``(batch, length, heads, head_dim)`` with ``batch`` a multiple of M * N (``grid``, default the
    capacity). Returns ``(batch, length, heads, head_dim)``, one row per input in input order; with
    ``bundled_output=True`` returns the N query bundles of each superposition,
    ``(batch / M, length, heads, head_dim)``, still superposed over m (the 'att.+MLP' block).
    q and k are additionally divided by sqrt(M * N). A grid smaller than the capacity uses
    the keys ``keys[:M, :N]``.

    Args:
        capacity: ``(M, N)`` the keys are made for; any grid up to it can be run.
        num_random_features: R.
        bundled_output: keep the output superposed (normaliser summed over all m).
        epsilon: kernel epsilon.
        seed: seed of the projection and keys.
    """

    def __init__(
        self,
        capacity=(2, 2),
        num_random_features=256,
        bundled_output=False,
        epsilon=KERNEL_EPSILON,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            num_random_features=num_random_features, epsilon=epsilon, seed=seed, **kwargs
        )
        self.capacity = check_grid(capacity, name="capacity")
        self.bundled_output = bool(bundled_output)

    def build(self, query_shape, key_shape=None, value_shape=None):
        if self.built:
            return
        super().build(query_shape)
        seed = None if self.seed is None else self.seed + 1
        self.keys = self.add_weight(
            shape=self.capacity + (self.head_dim,),
            initializer=BipolarKeys(_fresh_seed(seed)),
            trainable=False,
            name="keys",
        )

    def call(self, query, key, value, padding_mask=None, grid=None):
        _check_heads(self.name, query, key, value)
        m, n = check_grid(self.capacity if grid is None else grid, self.capacity)
        batch = query.shape[0]
        if isinstance(batch, int) and batch % (m * n):
            raise ValueError(
                f"{self.name}: the batch ({batch}) must be a multiple of M * N = {m * n} "
                f"at grid {(m, n)}; "
                "pad it (keras_mimo.superposition.pad_to_multiple) "
                "or use a model, which pads for you."
            )
        out_dtype = query.dtype
        query, key, value = self._prepare(
            query, key, value, padding_mask, extra_scale=math.sqrt(m * n)
        )
        length, heads, dim = ops.shape(query)[1], query.shape[2], query.shape[3]
        grid_shape = (-1, m, n, length, heads, dim)
        keys = ops.reshape(ops.cast(self.keys[:m, :n], "float32"), (1, m, n, 1, 1, dim))
        q_bundles = ops.sum(ops.reshape(query, grid_shape) * keys, axis=1)  # (B', N, L, H, D)
        k_bundles = ops.sum(ops.reshape(key, grid_shape) * keys, axis=2)  # (B', M, L, H, D)
        v_bundles = ops.sum(ops.reshape(value, grid_shape) * keys, axis=2)  # (B', M, L, H, D)
        q = self.features(q_bundles)  # (B', N, L, H, R)
        k = self.features(k_bundles)  # (B', M, L, H, R)
        state = ops.einsum("bmlhr,bmlhd->bhrd", k, v_bundles)
        numerator = ops.einsum("bnlhr,bhrd->bnlhd", q, state)  # (B', N, L, H, D)
        k_sums = ops.sum(k, axis=2)  # (B', M, H, R)
        if self.bundled_output:
            normaliser = ops.einsum("bnlhr,bhr->bnlh", q, ops.sum(k_sums, axis=1))
            out = numerator / normaliser[..., None]
            return ops.cast(ops.reshape(out, (-1, length, heads, dim)), out_dtype)
        normaliser = ops.einsum("bnlhr,bmhr->bmnlh", q, k_sums)  # (B', M, N, L, H)
        out = numerator[:, None] / normaliser[..., None] * keys  # unbind every (m, n)
        return ops.cast(ops.reshape(out, (-1, length, heads, dim)), out_dtype)

    def compute_output_shape(self, query_shape, key_shape=None, value_shape=None):
        if self.bundled_output:
            return (None,) + tuple(query_shape[1:])
        return tuple(query_shape)

    def get_config(self):
        config = super().get_config()
        config.update(capacity=self.capacity, bundled_output=self.bundled_output)
        return config


# --------------------------------------------------------------------------- multi-head wrapper
ATTENTION_TYPES = ("performer", "att", "att+mlp")


@keras.saving.register_keras_serializable(package="keras_mimo")
class MultiHeadFAVORAttention(GridCapacityConfig, keras.layers.Layer):
    """Multi-head linear attention: Dense q, k, v projections -> FAVOR+ core -> Dense output
    projection.

    ``call(x, padding_mask=None, grid=None)`` on ``(batch, length, dim)``. ``attention`` chooses the
    core: ``"performer"`` (plain FAVOR+), ``"att"`` (superposed, one output row per input) or
    ``"att+mlp"`` (superposed, output stays bundled: ``batch / M`` rows). The projections run per
    input, before superposition, as in the reference.

    Args:
        num_heads: H.
        head_dim: D.
        output_dim: width of the output projection (default: the input width).
        attention: "performer", "att" or "att+mlp".
        capacity: ``(M, N)`` for the superposed cores (ignored by "performer").
        num_random_features: R.
        seed: seed of the projections' initialisers, the random features and keys.
    """

    def __init__(
        self,
        num_heads,
        head_dim,
        output_dim=None,
        attention="att",
        capacity=(2, 2),
        num_random_features=256,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = positive_int("num_heads", num_heads)
        self.head_dim = positive_int("head_dim", head_dim)
        self.output_dim = None if output_dim is None else positive_int("output_dim", output_dim)
        if attention not in ATTENTION_TYPES:
            raise ValueError(f"attention={attention!r} is unknown: use one of {ATTENTION_TYPES}.")
        self.attention = attention
        self.capacity = (
            (1, 1) if attention == "performer" else check_grid(capacity, name="capacity")
        )
        self.num_random_features = positive_int("num_random_features", num_random_features)
        self.seed = seed
        seeds = iter([None] * 8) if seed is None else iter(range(seed, seed + 8))
        width = self.num_heads * self.head_dim
        dense = lambda units, name: keras.layers.Dense(  # noqa: E731
            units, kernel_initializer=glorot_uniform(next(seeds)), name=name
        )
        self.query_dense = dense(width, "query")
        self.key_dense = dense(width, "key")
        self.value_dense = dense(width, "value")
        self._output_dense_seed = next(seeds)
        core_seed = next(seeds)
        if attention == "performer":
            self.core = FAVORAttention(num_random_features, seed=core_seed, name="favor")
        else:
            self.core = SuperposedFAVORAttention(
                self.capacity,
                num_random_features,
                bundled_output=(attention == "att+mlp"),
                seed=core_seed,
                name="favor",
            )

    def build(self, input_shape):
        if self.built:
            return
        dim = input_shape[-1]
        width = self.num_heads * self.head_dim
        self.output_dense = keras.layers.Dense(
            self.output_dim or dim,
            kernel_initializer=glorot_uniform(self._output_dense_seed),
            name="output",
        )
        for layer in (self.query_dense, self.key_dense, self.value_dense):
            layer.build(input_shape)
        self.core.build((None, None, self.num_heads, self.head_dim))
        self.output_dense.build((None, None, width))
        self.built = True

    def _heads(self, x):
        return ops.reshape(x, (ops.shape(x)[0], ops.shape(x)[1], self.num_heads, self.head_dim))

    def call(self, x, padding_mask=None, grid=None):
        q, k, v = (
            self._heads(layer(x)) for layer in (self.query_dense, self.key_dense, self.value_dense)
        )
        if self.attention == "performer":
            if grid is not None and tuple(grid) != (1, 1):
                raise ValueError(
                    f"{self.name}: plain FAVOR+ attention runs only at grid (1, 1), got {grid}."
                )
            out = self.core(q, k, v, padding_mask=padding_mask)
        else:
            out = self.core(q, k, v, padding_mask=padding_mask, grid=grid)
        out = ops.reshape(
            out, (ops.shape(out)[0], ops.shape(out)[1], self.num_heads * self.head_dim)
        )
        return self.output_dense(out)

    def compute_output_shape(self, input_shape):
        batch = None if self.attention == "att+mlp" else input_shape[0]
        return (batch, input_shape[1], self.output_dim or input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads,
            head_dim=self.head_dim,
            output_dim=self.output_dim,
            attention=self.attention,
            capacity=self.capacity,
            num_random_features=self.num_random_features,
            seed=self.seed,
        )
        return config
