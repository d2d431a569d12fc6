"""Weight initialisers drawn with numpy from a seed.

The same seed gives the same weights on TensorFlow, JAX and PyTorch, and JAX does not
compile one random-number kernel per weight shape (which made building a model take
tens of seconds there).
"""

import math

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="keras_mimo")
class SeededVarianceScaling(keras.initializers.Initializer):
    """Variance scaling (He, Glorot, ...) or a fixed ``stddev``, sampled by numpy.

    Args:
        scale: variance is ``scale / fan`` (ignored when ``stddev`` is given).
        mode: "fan_in", "fan_out" or "fan_avg"; for kernels of shape (..., in, out) the receptive
            field counts.
        distribution: "normal" or "uniform" (same variance).
        stddev: fixed standard deviation instead of a fan rule.
        seed: integer seed; None draws fresh values every time.
    """

    def __init__(self, scale=1.0, mode="fan_in", distribution="normal", stddev=None, seed=None):
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"mode={mode!r} must be 'fan_in', 'fan_out' or 'fan_avg'.")
        if distribution not in ("normal", "uniform"):
            raise ValueError(f"distribution={distribution!r} must be 'normal' or 'uniform'.")
        self.scale = float(scale)
        self.mode = mode
        self.distribution = distribution
        self.stddev = None if stddev is None else float(stddev)
        self.seed = seed

    def _std(self, shape):
        if self.stddev is not None:
            return self.stddev
        receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
        fan_in = shape[-2] * receptive if len(shape) >= 2 else shape[0]
        fan_out = shape[-1] * receptive
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        return math.sqrt(self.scale / max(1.0, fan))

    def __call__(self, shape, dtype=None):
        rng = np.random.default_rng(self.seed)
        std = self._std(tuple(shape))
        if self.distribution == "normal":
            values = rng.normal(0.0, std, size=shape)
        else:
            limit = math.sqrt(3.0) * std
            values = rng.uniform(-limit, limit, size=shape)
        return keras.ops.convert_to_tensor(
            values.astype(keras.backend.standardize_dtype(dtype or "float32"))
        )

    def get_config(self):
        return {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution,
            "stddev": self.stddev,
            "seed": self.seed,
        }


def he_fan_out(seed=None):
    """kaiming_normal_(mode="fan_out", nonlinearity="relu"), the reference's convolution
    initialiser."""
    return SeededVarianceScaling(2.0, "fan_out", "normal", seed=seed)


def glorot_uniform(seed=None):
    return SeededVarianceScaling(1.0, "fan_avg", "uniform", seed=seed)
