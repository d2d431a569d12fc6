"""Where a MIMONet-10 training step spends its time on this CPU: one model variant per line.

Each line is the mean wall time of one ``train_on_batch`` (SGD, cross-entropy, random
20x20 images) after 5 warm-up steps, for 32 superpositions (32 * N images) or 32 images
for the WideResNet. Variants switch off one ingredient at a time, so the differences
show what each one costs. Usage: ``KERAS_BACKEND=tensorflow python results/train_step_cost.py``.
"""
import time

import keras
import numpy as np

from keras_mimo.models import MIMOConv, WideResNet

BODY = dict(depth=10, width=2, input_shape=(20, 20, 1), seed=1)
VARIANTS = [  # name, model, images per step
    ("WRN-10-2, 32 images", lambda: WideResNet(**BODY), 32),
    ("MIMONet-10 N=4, 32 x 4 images", lambda: MIMOConv(initial_width=4, capacity=4, **BODY), 128),
    ("  without the isometry regulariser", lambda: MIMOConv(initial_width=4, capacity=4, isometry_regularization=0.0, **BODY), 128),
    ("  ReLU instead of PReLU", lambda: MIMOConv(initial_width=4, capacity=4, activation="relu", **BODY), 128),
    ("  no binding (plain sum)", lambda: MIMOConv(initial_width=4, capacity=4, binding="none", **BODY), 128),
    ("  16-channel stem instead of 64", lambda: MIMOConv(initial_width=1, capacity=4, **BODY), 128),
    ("MIMONet-10 N=1, 32 images", lambda: MIMOConv(initial_width=4, capacity=1, **BODY), 32),
    ("MIMONet-10 N=2, 32 x 2 images", lambda: MIMOConv(initial_width=4, capacity=2, **BODY), 64),
]


def step_time(model, images, steps=40, warmup=5):
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((images, 20, 20, 1), dtype="float32")
    y = rng.integers(0, 10, images)
    for _ in range(warmup):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (time.perf_counter() - start) / steps


if __name__ == "__main__":
    print(f"backend {keras.backend.backend()}")
    for name, build, images in VARIANTS:
        print(f"{name:40s} {1000 * step_time(build(), images):7.1f} ms per step", flush=True)
