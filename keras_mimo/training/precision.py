"""Mixed precision for training runs: which Keras dtype policy a ``--mixed-precision`` mode means,
set for one run.

Modes: ``"off"`` (float32), ``"float16"`` / ``"bfloat16"`` (``mixed_float16`` / ``mixed_bfloat16``:
float32 variables, half-precision compute, float32 logits), and ``"auto"``, whose meaning is the
caller's reference default: LRA trains in float16 on a GPU like its reference; the image recipes
train in float32 like theirs. bfloat16 pays off on CPUs with AMX/AVX512-BF16 and on recent GPUs.
Imports Keras only when called, so the command line can list MODES before choosing the backend.
"""

import contextlib

MODES = ("auto", "off", "float16", "bfloat16")


def mixed_precision_policy(mode, auto_policy=None):
    """The dtype policy name for ``mode`` (None: float32); ``"auto"`` gives ``auto_policy``, the
    caller's default."""
    if mode in (None, "auto"):
        return auto_policy
    if mode == "off":
        return None
    if mode in ("float16", "bfloat16"):
        return f"mixed_{mode}"
    raise ValueError(f"mixed_precision={mode!r} must be one of {', '.join(map(repr, MODES))}.")


@contextlib.contextmanager
def global_dtype_policy(policy):
    """Sets Keras' global dtype policy (None leaves it alone) for the body of the ``with``, then
    restores it."""
    import keras

    previous = keras.config.dtype_policy()
    try:
        if policy:
            keras.config.set_dtype_policy(policy)
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def gpu_visible():
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False
