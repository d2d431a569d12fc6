"""What the MIMOConv stem costs in a training step, piece by piece (TensorFlow backend).

The stem runs on every image, N times the body's batch, at full resolution. Each line is the mean
time of forward and backward (gradients of the stem's weights) for 64 superpositions of N = 4
20x20 images into a 64-channel stem, as in the Fashion-MNIST recipes. ``plain BN`` is
``bn(conv(x), training=True)``; ``statistics from patches`` is
``keras_mimo.layers.residual.stem_conv_then_batch_norm``, which MIMOConv trains with.
Usage: ``KERAS_BACKEND=tensorflow python docs/results/stem_cost.py [--dtype-policy float32]``.
"""

import argparse
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from train_step_cost import positive  # docs/results/ is on sys.path when run as a script

from keras_mimo.layers.binding import SuperpositionBinding
from keras_mimo.layers.residual import batch_norm, stem_conv_then_batch_norm

SUPERPOSITIONS, N, CHANNELS, SIZE = 64, 4, 64, 20


def main(steps):
    images = tf.constant(
        np.random.default_rng(0).random((SUPERPOSITIONS * N, SIZE, SIZE, 1), dtype="float32")
    )
    conv = keras.layers.Conv2D(CHANNELS, 3, padding="same", use_bias=False)
    conv.build(images.shape)
    bn = batch_norm("stem_bn")
    bn.build((None, SIZE, SIZE, CHANNELS))
    bind = SuperpositionBinding(N)
    bind.build((None, SIZE, SIZE, CHANNELS))
    variants = {
        "conv": lambda x: conv(x),
        "conv, plain BN": lambda x: bn(conv(x), training=True),
        "conv, plain BN, ReLU": lambda x: ops.relu(bn(conv(x), training=True)),
        "conv, plain BN, ReLU, binding": lambda x: bind(
            ops.relu(bn(conv(x), training=True)), superposition=N
        ),
        "statistics from patches, ReLU": lambda x: ops.relu(
            stem_conv_then_batch_norm(x, conv, bn, True)
        ),
        "statistics from patches, ReLU, binding": lambda x: bind(
            ops.relu(stem_conv_then_batch_norm(x, conv, bn, True)), superposition=N
        ),
    }
    weights = conv.trainable_variables + bn.trainable_variables + bind.trainable_variables
    for name, stem in variants.items():

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(tf.cast(stem(images), "float32")))
            return tape.gradient(loss, weights)

        for _ in range(3):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        print(f"{name:40s} {1000 * (time.perf_counter() - start) / steps:6.1f} ms", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dtype-policy",
        default="mixed_bfloat16",
        help="Keras dtype policy (the runs: mixed_bfloat16)",
    )
    parser.add_argument("--steps", type=positive, default=20, help="timed steps per line")
    args = parser.parse_args()
    keras.config.set_dtype_policy(args.dtype_policy)
    print(
        f"backend {keras.backend.backend()}, {args.dtype_policy}, {SUPERPOSITIONS} x {N} images of "
        f"{SIZE}x{SIZE} into {CHANNELS} channels"
    )
    main(args.steps)
