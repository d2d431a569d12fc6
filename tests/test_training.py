"""Training through model.fit: one-cycle schedule, FilteredSGD (PyTorch semantics, decay exclusions,
gradient
filter), dynamic superposition, validation at several N, atomic checkpoints, SIGKILL resume, data
parallel, CLI."""

import contextlib
import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import to_numpy

from keras_mimo.data import write_idx
from keras_mimo.models import MIMOConv
from keras_mimo.training import (
    DynamicSuperposition,
    FilteredSGD,
    GradientFilterCallback,
    LazyIsometry,
    MultiSuperpositionValidation,
    OneCycleLR,
    OneCycleMomentum,
    atomic_path,
    one_cycle,
)
from keras_mimo.training.recipes import RECIPES, get_recipe

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = Path(__file__).parent / "data" / "images"
BACKEND = keras.backend.backend()


def tiny_mimoconv(**overrides):
    config = dict(
        depth=10, width=1, initial_width=1, num_classes=5, capacity=4, input_shape=(8, 8, 3), seed=0
    )
    config.update(overrides)
    return MIMOConv(**config)


class RunningLoss(keras.callbacks.Callback):
    """Keras' running mean of the training loss, after every batch."""

    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(logs["loss"])


def training_loss(model, x, y):
    """One batch's training-mode loss plus the model's regularisation losses, as a train step
    computes it."""
    logits = model(x, training=True)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    return float(to_numpy(loss)) + sum(float(to_numpy(term)) for term in model.losses)


def sync(model):
    """JAX keeps the training state outside the variables during fit; put it back before reading
    them."""
    if BACKEND == "jax":
        model.jax_state_sync()


# ------------------------------------------------------------------------------------------------
# real small data
def cifar_pngs():
    files = sorted(SAMPLE_DIR.glob("cifar10_*.png"))
    assert len(files) == 20
    images = np.stack([tf.io.decode_png(path.read_bytes()).numpy() for path in files])
    labels = np.array([int(path.stem.split("_")[-1]) for path in files], dtype=np.uint8)
    return images, labels


def write_fashion_idx(folder):
    """An IDX folder of 64 training and 32 test grey 28x28 images: the 20 real CIFAR-10 PNGs, grey,
    cropped, flipped."""
    images, labels = cifar_pngs()
    grey = images.mean(axis=-1).astype(np.uint8)[:, 2:30, 2:30]
    variants = np.concatenate([grey, grey[:, :, ::-1], grey[:, ::-1, :], grey[:, ::-1, ::-1]])
    variant_labels = np.concatenate([labels] * 4)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", 64), ("t10k", 32)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", variants[:count])
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", variant_labels[:count])
    return folder


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory):
    return write_fashion_idx(tmp_path_factory.mktemp("fashion"))


@pytest.fixture(scope="module")
def cifar_tfds_dir(tmp_path_factory):
    import tensorflow_datasets as tfds

    data_dir = tmp_path_factory.mktemp("tfds")
    images, labels = cifar_pngs()
    reference = tfds.builder("cifar10", data_dir=str(data_dir))
    splits = {
        split: tf.data.Dataset.from_tensor_slices(
            {
                "image": images,
                "label": labels.astype(np.int64),
                "id": [f"{split}_{i:05d}" for i in range(20)],
            }
        )
        for split in ("train", "test")
    }
    tfds.dataset_builders.store_as_tfds_dataset(
        name="cifar10",
        version=str(reference.version),
        features=reference.info.features,
        split_datasets=splits,
        data_dir=str(data_dir),
        disable_shuffling=True,
    )
    return data_dir


def subprocess_env(**extra):
    env = dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    env.update(extra)
    return env


# ------------------------------------------------------------------------------------------------
# schedules
def torch_one_cycle(total_steps, max_lr=0.2, pct_start=0.3):
    import torch

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.0, momentum=0.0)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr, total_steps=total_steps, pct_start=pct_start
    )
    lrs, momenta = [], []
    for _ in range(total_steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        scheduler.step()
    return np.array(lrs), np.array(momenta)


@pytest.mark.parametrize("total_steps", [7, 100])
def test_one_cycle_matches_pytorch_one_cycle_lr(total_steps):
    expected_lr, expected_momentum = torch_one_cycle(total_steps)
    lr, momentum = one_cycle(0.2, total_steps)
    steps = np.arange(total_steps)
    np.testing.assert_allclose(to_numpy(lr(steps)), expected_lr, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(to_numpy(momentum(steps)), expected_momentum, rtol=1e-6)
    assert float(to_numpy(lr(0))) == pytest.approx(0.2 / 25)
    assert float(to_numpy(lr(10 * total_steps))) == pytest.approx(
        0.2 / 25 / 1e4
    )  # held after the end
    assert expected_momentum[0] == pytest.approx(0.95) and expected_momentum.min() >= 0.85 - 1e-12
    if total_steps == 100:  # the lr peaks (and the momentum bottoms out) at step 0.3 * 100 - 1
        assert (
            expected_lr.argmax() == expected_momentum.argmin() == 29
            and expected_momentum.min() == pytest.approx(0.85)
        )


def test_schedules_and_optimizer_serialise():
    lr, momentum = one_cycle(0.2, 1000, pct_start=0.25)
    optimizer = FilteredSGD(
        lr, momentum=momentum, weight_decay=1e-5, gradient_filter=10.0, global_clipnorm=1e3
    )
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, FilteredSGD)
    assert isinstance(restored._learning_rate, OneCycleLR) and restored._learning_rate.max_lr == 0.2
    assert (
        restored.gradient_filter == 10.0
        and restored.l2_weight_decay == 1e-5
        and restored.global_clipnorm == 1e3
    )
    assert isinstance(restored.momentum, OneCycleMomentum) and restored.momentum.pct_start == 0.25
    steps = np.arange(0, 1000, 37)
    np.testing.assert_allclose(to_numpy(restored.momentum(steps)), to_numpy(momentum(steps)))
    np.testing.assert_allclose(to_numpy(restored._learning_rate(steps)), to_numpy(lr(steps)))
    with pytest.raises(ValueError, match="total_steps"):
        OneCycleLR(0.2, 1)


# ------------------------------------------------------------------------------------------------
# FilteredSGD
def test_fit_follows_pytorch_sgd_with_one_cycle_momentum_and_decay_exclusions():
    """8 updates through model.fit equal torch.optim.SGD + OneCycleLR (cycled momentum, L2 skipping
    the PReLU slope)."""
    import torch

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.normal(size=(64, 2)).astype("float32")
    # The initial weights come from a fixed seed, not from whatever earlier tests left in the
    # global generator: a run that diverges would leave float32 rounding to decide, so the peak
    # lr is 0.1.
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="dense1")(inputs)
    hidden = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25), name="act")(
        hidden
    )
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense2")(hidden))
    initial = [w.copy() for w in model.get_weights()]
    total = 8
    lr, momentum = one_cycle(0.1, total, pct_start=0.5)
    # weight decay large enough to matter, so applying it to the slope would show
    optimizer = FilteredSGD(lr, momentum=momentum, weight_decay=0.05)
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)

    torch.manual_seed(0)
    linear1, act, linear2 = torch.nn.Linear(4, 3), torch.nn.PReLU(3), torch.nn.Linear(3, 2)
    with torch.no_grad():
        linear1.weight.copy_(torch.tensor(initial[0].T))
        linear1.bias.copy_(torch.tensor(initial[1]))
        act.weight.copy_(torch.tensor(initial[2]))
        linear2.weight.copy_(torch.tensor(initial[3].T))
        linear2.bias.copy_(torch.tensor(initial[4]))
    reference = torch.optim.SGD(
        [
            {"params": [act.weight], "weight_decay": 0.0},
            {"params": [*linear1.parameters(), *linear2.parameters()], "weight_decay": 0.05},
        ],
        lr=0.0,
        momentum=0.0,
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        reference, 0.1, total_steps=total, pct_start=0.5
    )
    for step in range(total):
        xb, yb = torch.tensor(x[8 * step : 8 * step + 8]), torch.tensor(y[8 * step : 8 * step + 8])
        reference.zero_grad()
        torch.nn.functional.mse_loss(linear2(act(linear1(xb))), yb).backward()
        reference.step()
        scheduler.step()
    expected = [
        linear1.weight.detach().numpy().T,
        linear1.bias.detach().numpy(),
        act.weight.detach().numpy(),
        linear2.weight.detach().numpy().T,
        linear2.bias.detach().numpy(),
    ]
    for got, want in zip(model.get_weights(), expected):
        assert np.all(np.abs(want) < 100), "the reference run stays finite and small"
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
    assert int(to_numpy(optimizer.iterations)) == total
    # A constant momentum (or decayed slope) lands elsewhere: the schedule is what made the weights
    # match.
    assert not np.allclose(model.get_weights()[2], initial[2] * (1 - 0.1 * 0.05), atol=1e-6)


def test_weight_decay_skips_prelu_slopes_and_srelu_offsets():
    for activation, parameter in (("prelu", "alpha"), ("srelu", "offset")):
        model = tiny_mimoconv(activation=activation)
        optimizer = FilteredSGD(0.1, momentum=0.0, weight_decay=0.01)
        variables = model.trainable_variables
        optimizer.build(variables)
        skipped = sorted(v.path for v in variables if not optimizer.uses_weight_decay(v))
        assert skipped and all(path.endswith("/" + parameter) for path in skipped)
        assert (
            len(skipped) == sum(1 for v in variables if v.path.endswith("/" + parameter)) == 6
        )  # 2 per block
        before = [to_numpy(v).copy() for v in variables]
        optimizer.apply([np.zeros(v.shape, "float32") for v in variables], variables)
        for v, old in zip(variables, before):
            expected = old if v.path in skipped else old * (1 - 0.1 * 0.01)
            np.testing.assert_allclose(to_numpy(v), expected, rtol=1e-6, err_msg=v.path)


class Recorder(keras.callbacks.Callback):
    """Weights and momentum buffers after every batch."""

    def __init__(self):
        super().__init__()
        self.weights, self.buffers = [], []

    def on_train_batch_end(self, batch, logs=None):
        sync(self.model)
        self.weights.append([to_numpy(v).copy() for v in self.model.trainable_variables])
        self.buffers.append([to_numpy(v).copy() for v in self.model.optimizer.momentums])


def test_gradient_filter_skips_a_spiked_batch_and_counts_it():
    rng = np.random.default_rng(1)
    x = np.tile(rng.normal(size=(8, 3)).astype("float32"), (4, 1))
    y = np.tile(rng.normal(size=(8, 1)).astype("float32"), (4, 1))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    optimizer = FilteredSGD(0.01, momentum=0.9, weight_decay=1e-4, gradient_filter=10.0)
    model.compile(optimizer=optimizer, loss="mse")
    first = model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[GradientFilterCallback(0)],
    )
    assert first.history["skipped_updates"] == [0]  # first epoch: no threshold yet
    threshold = float(to_numpy(optimizer.filter_threshold))
    assert np.isfinite(threshold) and threshold == pytest.approx(
        10 * first.history["mean_grad_norm"][0]
    )

    spiked_y = y.copy()
    spiked_y[16:24] *= 1e4  # the third batch's gradient explodes
    recorder = Recorder()
    second = model.fit(
        x,
        spiked_y,
        batch_size=8,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[GradientFilterCallback(0), recorder],
    )
    assert second.history["skipped_updates"] == [1] and second.history["skipped_updates_total"] == [
        1
    ]
    for a, b in zip(
        recorder.weights[1] + recorder.buffers[1], recorder.weights[2] + recorder.buffers[2]
    ):
        np.testing.assert_array_equal(a, b)  # skipped: no weight and no momentum change
    for a, b in zip(
        recorder.weights[2] + recorder.buffers[2], recorder.weights[3] + recorder.buffers[3]
    ):
        assert not np.array_equal(a, b)  # the next, ordinary batch updates again
    assert (
        int(to_numpy(optimizer.iterations)) == 8
    )  # the schedule still advances on a skipped batch
    assert (
        float(to_numpy(optimizer.skipped_updates)) == 0
    )  # per-epoch counter restarted by the callback


# ------------------------------------------------------------------------------------------------
# superposition
def test_dynamic_superposition_really_switches_every_batch():
    model = tiny_mimoconv()
    model.compile(
        optimizer=FilteredSGD(0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(32, 8, 8, 3)).astype("float32"), np.arange(32) % 5
    dynamic = DynamicSuperposition(4, low=1, p=0.5, seed=7)

    running = RunningLoss()
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[dynamic, running])
    draws = np.random.default_rng([7, 0]).random(8)
    assert dynamic.used == [4 if u < 0.5 else 1 for u in draws]
    assert set(Counter(dynamic.used)) == {1, 4}
    assert model.superposition == 4
    # With lr 0, batch k's loss is the training-mode loss at the N it used: recompute each one at
    # that N.

    def batch_loss(k, n):
        model.superposition = n
        return training_loss(model, x[4 * k : 4 * k + 4], y[4 * k : 4 * k + 4])

    per_batch = [batch_loss(k, n) for k, n in enumerate(dynamic.used)]
    np.testing.assert_allclose(running.losses, np.cumsum(per_batch) / np.arange(1, 9), rtol=1e-4)
    swapped = [
        batch_loss(k, 5 - n) for k, n in enumerate(dynamic.used)
    ]  # the other N for every batch
    assert not np.allclose(per_batch, swapped, rtol=1e-3)


@pytest.mark.parametrize("superposition", [4, 2])
def test_lazy_isometry_puts_the_penalty_on_every_kth_update_only(superposition):
    model = tiny_mimoconv(isometry_regularization=0.05, superposition=superposition)
    model.compile(
        optimizer=FilteredSGD(0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(36, 8, 8, 3)).astype("float32"), np.arange(36) % 5
    lazy = LazyIsometry(3)

    running = RunningLoss()
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[lazy, running])
    assert lazy.used == [3.0, 0.0, 0.0] * 3
    assert model.isometry_scale == 1.0 and model.superposition == superposition
    # With lr 0, batch k's loss is its training-mode loss plus the regularisers at that batch's
    # scale.

    def batch_loss(k, scale):
        model.isometry_scale = scale
        return training_loss(model, x[4 * k : 4 * k + 4], y[4 * k : 4 * k + 4])

    per_batch = [batch_loss(k, scale) for k, scale in enumerate(lazy.used)]
    np.testing.assert_allclose(running.losses, np.cumsum(per_batch) / np.arange(1, 10), rtol=1e-4)
    every_step = [batch_loss(k, 1.0) for k in range(9)]
    assert per_batch[0] - every_step[0] > 0.1, (
        "the regularised batches carry 3x a penalty large enough to see"
    )
    assert per_batch[1] < every_step[1] - 0.05, "the others leave it out"
    model.isometry_scale = 1.0


def test_dynamic_superposition_and_lazy_isometry_switch_together():
    # Both set an operating point per batch; every (N, scale) pair must get its own compiled step.
    model = tiny_mimoconv(isometry_regularization=0.05)
    model.compile(
        optimizer=FilteredSGD(0.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(48, 8, 8, 3)).astype("float32"), np.arange(48) % 5
    dynamic, lazy = DynamicSuperposition(4, low=1, p=0.5, seed=3), LazyIsometry(2)

    running = RunningLoss()
    model.fit(
        x, y, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[dynamic, lazy, running]
    )
    points = list(zip(dynamic.used, lazy.used))
    assert lazy.used == [2.0, 0.0] * 6
    assert {(4, 2.0), (4, 0.0), (1, 2.0), (1, 0.0)} <= set(points), (
        f"every pair occurs in this draw: {points}"
    )
    assert model.superposition == 4 and model.isometry_scale == 1.0

    def batch_loss(k, n, scale):
        model.superposition, model.isometry_scale = n, scale
        return training_loss(model, x[4 * k : 4 * k + 4], y[4 * k : 4 * k + 4])

    per_batch = [batch_loss(k, n, scale) for k, (n, scale) in enumerate(points)]
    np.testing.assert_allclose(running.losses, np.cumsum(per_batch) / np.arange(1, 13), rtol=1e-4)
    other_scale = [batch_loss(k, n, 2.0 - scale) for k, (n, scale) in enumerate(points)]
    other_n = [batch_loss(k, 5 - n, scale) for k, (n, scale) in enumerate(points)]
    assert not np.allclose(per_batch, other_scale, rtol=1e-3) and not np.allclose(
        per_batch, other_n, rtol=1e-3
    )
    model.superposition, model.isometry_scale = 4, 1.0


def test_isometry_scale_is_checked_and_leaves_other_regularisers_alone():
    model = tiny_mimoconv(isometry_regularization=0.05)
    with pytest.raises(ValueError, match="isometry_scale=-1 must be a number >= 0"):
        model.isometry_scale = -1
    model(np.zeros((4, 8, 8, 3), "float32"))
    full = sum(float(to_numpy(loss)) for loss in model.losses)
    model.isometry_scale = 0.0
    model(np.zeros((4, 8, 8, 3), "float32"))
    binding_only = sum(float(to_numpy(loss)) for loss in model.losses)
    assert 0.0 < binding_only < full, (
        "the binding regulariser stays; only the isometry penalty goes"
    )
    with pytest.raises(ValueError, match="every=0 must be a positive integer"):
        LazyIsometry(0)


def test_validation_at_several_n_in_one_fit(tmp_path):
    model = tiny_mimoconv()
    model.compile(
        optimizer=FilteredSGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy("accuracy")],
    )
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(32, 8, 8, 3)).astype("float32"), np.arange(32) % 5
    validation = tf.data.Dataset.from_tensor_slices((x[:12], y[:12])).batch(8)
    model.superposition = 2  # training N, restored after each validation
    history = model.fit(
        x,
        y,
        batch_size=8,
        epochs=1,
        verbose=0,
        callbacks=[
            MultiSuperpositionValidation(validation, [4, 2, 1]),
            keras.callbacks.CSVLogger(str(tmp_path / "log.csv")),
        ],
    )
    assert model.superposition == 2
    for n in (4, 2, 1):
        assert len(history.history[f"val_accuracy_n{n}"]) == 1
        model.superposition = n
        final = model.evaluate(validation, verbose=0, return_dict=True)
        assert history.history[f"val_loss_n{n}"][-1] == pytest.approx(final["loss"], rel=1e-5)
        assert history.history[f"val_accuracy_n{n}"][-1] == pytest.approx(final["accuracy"])
    assert history.history["val_loss"] == history.history["val_loss_n4"]
    assert len({history.history[f"val_loss_n{n}"][-1] for n in (4, 2, 1)}) == 3
    with open(tmp_path / "log.csv") as stream:
        header = next(csv.reader(stream))
    assert {"val_accuracy_n1", "val_accuracy_n2", "val_accuracy_n4", "val_loss_n1"} <= set(header)


# ------------------------------------------------------------------------------------------------
# files
def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "last.keras"
    target.write_bytes(b"complete old checkpoint")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            Path(temporary).write_bytes(b"half of a new")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"complete old checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.keras"]
    with atomic_path(target) as temporary:
        assert Path(temporary).parent == tmp_path and temporary.endswith(".keras")
        Path(temporary).write_bytes(b"new")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == [
        "last.keras"
    ]


# ------------------------------------------------------------------------------------------------
# recipes and CLI
def test_recipes_cover_the_paper_runs():
    for dataset in ("cifar10", "cifar100"):
        assert get_recipe(f"wrn-28-10.{dataset}").epochs == 200
        for suffix in ("n1", "n2", "n4", "dynamic"):
            recipe = get_recipe(f"mimoconv-28-10.{dataset}-{suffix}")
            assert (
                recipe.epochs,
                recipe.batch_size,
                recipe.lr,
                recipe.mixup_alpha,
                recipe.weight_decay,
                recipe.gradient_filter,
            ) == (1200, 128, 0.2, 1.0, 1e-5, 10.0)
    assert get_recipe("wrn-28-10.cifar100").model_overrides == {"num_classes": 100}
    dynamic = get_recipe("mimoconv-28-10.cifar10-dynamic")
    assert (dynamic.dynamic_p, dynamic.dynamic_low, dynamic.eval_superpositions) == (
        0.8,
        1,
        (4, 2, 1),
    )
    assert {"mimoconv-10-2.mnist-n4", "mimoconv-28-10.svhn-n2", "wrn-10-2.fashion-mnist"} <= set(
        RECIPES
    )
    assert get_recipe("wrn-28-10.svhn").dataset == "svhn"


def test_overridden_body_is_named_in_the_description_and_prose_does_not_block_resuming(tmp_path):
    from keras_mimo.training.loop import _compare_configs
    from keras_mimo.training.recipes import resolve_recipe

    base = get_recipe("mimoconv-10-2.fashion-mnist-n2")
    wide = resolve_recipe(base.name, model_overrides=dict(capacity=2, width=4))
    assert wide.description == base.description + " Model overridden: width=4."
    assert (
        resolve_recipe(base.name, model_overrides=dict(capacity=2)).description == base.description
    )
    saved = dict(wide.to_dict(), data_dir="/elsewhere")
    _compare_configs(
        saved, dict(saved, description="reworded", data_dir=None), tmp_path
    )  # prose only: resumes
    with pytest.raises(ValueError, match=r"model_overrides: saved .*'width': 4.*now .*'width': 2"):
        _compare_configs(saved, dict(saved, model_overrides=dict(capacity=2, width=2)), tmp_path)


def test_import_keras_mimo_after_keras_is_enough_to_load_a_checkpoint(tmp_path):
    model = MIMOConv(
        depth=10, width=1, initial_width=1, num_classes=3, capacity=2, input_shape=(8, 8, 1), seed=1
    )
    model.save(tmp_path / "m.keras")
    code = (
        "import keras, keras_mimo; m = keras.saving.load_model(%r); "
        "print(type(m).__name__, m.capacity)" % str(tmp_path / "m.keras")
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env()
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["MIMOConv", "2"]


def test_cli_does_not_import_keras_before_choosing_the_backend():
    code = (
        "import sys; from keras_mimo import cli; cli.build_parser(); print('keras' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        check=True,
    )
    assert out.stdout.strip() == "False"


def run_cli(*args):
    from keras_mimo import cli

    return cli.main(list(map(str, args)))


def cli_error(*args):
    """The message of a command-line mistake: exit status 2, one line on stderr, no traceback."""
    stream = io.StringIO()
    with contextlib.redirect_stderr(stream):
        code = run_cli(*args)
    message = stream.getvalue()
    assert code == 2 and "Traceback" not in message, message
    return message


def read_log(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_quick_recipes_train_and_evaluate_on_real_small_data(tmp_path, fashion_dir, capsys):
    out = tmp_path / "dynamic"
    assert (
        run_cli(
            "train",
            "--recipe",
            "mimoconv-10-2.fashion-mnist-dynamic",
            "--quick",
            "--data-dir",
            fashion_dir,
            "--output",
            out,
            "--verbose",
            "0",
            "--steps-per-epoch",
            "3",
        )
        == 0
    )
    rows = read_log(out / "log.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert [int(r["iterations"]) for r in rows] == [
        3,
        6,
    ]  # capped epochs (of 16 batches each uncapped)
    for key in (
        "val_accuracy_n4",
        "val_accuracy_n2",
        "val_accuracy_n1",
        "skipped_updates",
        "learning_rate",
        "momentum",
    ):
        assert key in rows[0]
    assert all(np.isfinite(float(r["loss"])) for r in rows)
    results = json.loads((out / "results.json").read_text())
    assert set(results["accuracy"]) == {"4", "2", "1"} and results["epochs"] == 2
    assert (out / "best.keras").exists() and (out / "last.keras").exists()
    import importlib.util

    if importlib.util.find_spec("tensorboard") is not None:
        assert list((out / "tensorboard").rglob("*tfevents*"))
    else:
        assert (
            "TensorBoard logs are off because the tensorboard package is not installed"
            in capsys.readouterr().err
        )
    assert not list(out.glob(".tmp-*"))
    capsys.readouterr()
    assert (
        run_cli(
            "evaluate",
            "--checkpoint",
            out / "last.keras",
            "--dataset",
            "fashion_mnist",
            "--superposition",
            "1,2,4",
            "--data-dir",
            fashion_dir,
            "--split",
            "test[:32]",
            "--batch-size",
            "4",
            "--json",
        )
        == 0
    )
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for n in ("1", "2", "4"):
        assert evaluated[n]["accuracy"] == pytest.approx(results["accuracy"][n], abs=1e-6)
    evaluate = [
        "evaluate",
        "--dataset",
        "fashion_mnist",
        "--data-dir",
        fashion_dir,
        "--split",
        "test[:32]",
    ]
    assert re.search(
        r"superposition=3 is not allowed for a model of capacity 4: .* \[1, 2, 4\]",
        cli_error(*evaluate, "--checkpoint", out / "last.keras", "--superposition", "1,3"),
    )
    assert re.search(
        "--superposition '1,two' must be comma-separated integers",
        cli_error(*evaluate, "--checkpoint", out / "last.keras", "--superposition", "1,two"),
    )
    assert re.search(
        "is not a file: pass a .keras file that keras-mimo train wrote",
        cli_error(*evaluate, "--checkpoint", out / "missing.keras"),
    )


@pytest.mark.large
def test_quick_cifar_recipe_on_a_tensorflow_datasets_folder(tmp_path, cifar_tfds_dir):
    for config in ("mimoconv-28-10.cifar10-n2",):
        run_dir = tmp_path / config
        assert (
            run_cli(
                "train",
                "--recipe",
                config,
                "--quick",
                "--data-dir",
                cifar_tfds_dir,
                "--output",
                run_dir,
                "--verbose",
                "0",
                "--no-tensorboard",
            )
            == 0
        )
        state = json.loads((run_dir / "state.json").read_text())
        config_json = json.loads((run_dir / "config.json").read_text())
        steps = (
            20 // 4
        )  # 20 images, 4 superpositions of N images per batch, N passes per epoch -> 20 / 4 steps
        assert state["epochs_completed"] == 2 and state["iterations"] == 2 * steps, config
        assert config_json["model_overrides"]["depth"] == 10


def test_resume_after_sigkill_continues_the_schedule(tmp_path, fashion_dir):
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "keras_mimo.cli",
        "train",
        "--recipe",
        "mimoconv-10-2.fashion-mnist-n2",
        "--quick",
        "--epochs",
        "6",
        "--data-dir",
        str(fashion_dir),
        "--output",
        str(out),
        "--verbose",
        "2",
        "--no-tensorboard",
    ]
    process = subprocess.Popen(
        command, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    state_path = out / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if state_path.exists() and json.loads(state_path.read_text())["epochs_completed"] >= 1:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    done_before = json.loads(state_path.read_text())["epochs_completed"]
    assert 1 <= done_before < 6 and not (out / "results.json").exists()

    resumed = subprocess.run(
        command, env=subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    steps = 2 * 64 // (4 * 2)  # 64 images, batches of 4 superpositions of 2, 2 passes per epoch
    assert (
        f"Resuming mimoconv-10-2.fashion-mnist-n2-quick from {out / 'last.keras'}: "
        f"{done_before} epoch(s) done, optimizer step {done_before * steps} of {6 * steps}."
        in resumed.stdout
    )
    rows = read_log(out / "log.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(6))
    schedule, momentum = one_cycle(0.2, 6 * steps)
    # the logged lr and momentum are the schedule's at the end of each epoch, before and after
    # the kill
    for row in rows:
        end = (int(row["epoch"]) + 1) * steps
        assert int(row["iterations"]) == end
        assert float(row["learning_rate"]) == pytest.approx(
            float(to_numpy(schedule(end))), rel=1e-5
        )
        assert float(row["momentum"]) == pytest.approx(float(to_numpy(momentum(end))), rel=1e-6)
    assert json.loads((out / "state.json").read_text())["iterations"] == 6 * steps
    assert json.loads((out / "results.json").read_text())["epochs"] == 6
    assert not list(out.glob(".tmp-*"))
    # The resumed run continued the data order too: it ends with the weights of a run never
    # interrupted.
    whole = tmp_path / "whole"
    command[command.index("--output") + 1] = str(whole)
    uninterrupted = subprocess.run(
        command, env=subprocess_env(), capture_output=True, text=True, timeout=300
    )
    assert uninterrupted.returncode == 0, uninterrupted.stdout + uninterrupted.stderr
    resumed_weights = keras.saving.load_model(out / "last.keras", compile=False).get_weights()
    whole_weights = keras.saving.load_model(whole / "last.keras", compile=False).get_weights()
    for a, b in zip(resumed_weights, whole_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# data parallel
DATA_PARALLEL_SCRIPT = textwrap.dedent("""
    import os, sys, json
    import numpy as np
    backend = os.environ["KERAS_BACKEND"]
    if backend == "tensorflow":
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        devices = [tf.config.LogicalDeviceConfiguration()] * 2
        tf.config.set_logical_device_configuration(cpu, devices)
    import keras
    from keras_mimo.training import FilteredSGD, GradientFilterCallback, train
    from keras_mimo.training.image import distribution_scope as _distribution_scope

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 5)).astype("float32")
    y = rng.normal(size=(32, 2)).astype("float32")

    def fit(scope):
        with scope:
            keras.utils.set_random_seed(0)
            model = keras.Sequential(
                [keras.Input((5,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(2)]
            )
            optimizer = FilteredSGD(0.1, momentum=0.9, weight_decay=1e-3, gradient_filter=10.0)
            model.compile(optimizer=optimizer, loss="mse")
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0,
                  callbacks=[GradientFilterCallback(0)])
        return model

    import contextlib
    single = fit(contextlib.nullcontext())
    scope, replicas = _distribution_scope(True)
    parallel = fit(scope())
    for a, b in zip(single.get_weights(), parallel.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(keras.ops.convert_to_numpy(parallel.optimizer.iterations)) == 8
    results = train("mimoconv-10-2.fashion-mnist-n2", sys.argv[2], quick=True,
                    data_dir=sys.argv[1], verbose=0, data_parallel=True, tensorboard=False)
    assert results["replicas"] == replicas, results  # train() opened the distribution itself
    print(json.dumps(dict(replicas=replicas, results=results)))
""")


def test_data_parallel_on_two_virtual_cpu_devices(tmp_path, fashion_dir):
    if BACKEND == "torch":
        from keras_mimo.training import train

        with pytest.raises(
            ValueError,
            match="Data-parallel training is not supported on the torch backend yet",
        ):
            train(
                "mimoconv-10-2.fashion-mnist-n2",
                tmp_path / "run",
                quick=True,
                data_dir=fashion_dir,
                verbose=0,
                data_parallel=True,
            )
        return
    script = tmp_path / "data_parallel.py"
    script.write_text(DATA_PARALLEL_SCRIPT)
    env = subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=2")
    done = subprocess.run(
        [sys.executable, str(script), str(fashion_dir), str(tmp_path / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["results"]["epochs"] == 2 and 0.0 <= report["results"]["accuracy"]["2"] <= 1.0


def test_bfloat16_run_trains_in_mixed_precision_and_its_folder_refuses_another_precision(
    tmp_path, fashion_dir
):
    from keras_mimo.training import train

    class RecordPolicies(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            convs = [
                layer
                for layer in self.model._flatten_layers()
                if isinstance(layer, keras.layers.Conv2D)
            ]
            self.policies = {layer.dtype_policy.name for layer in convs}
            self.kernel_dtypes = {
                keras.backend.standardize_dtype(layer.kernel.dtype) for layer in convs
            }
            logits = self.model(np.zeros((2,) + self.model.image_shape, "float32"))
            self.logits_dtype = keras.backend.standardize_dtype(logits.dtype)

    record = RecordPolicies()
    out = tmp_path / "bf16"
    results = train(
        "mimoconv-10-2.fashion-mnist-n2",
        out,
        quick=True,
        data_dir=fashion_dir,
        verbose=0,
        steps_per_epoch=2,
        mixed_precision="bfloat16",
        extra_callbacks=[record],
    )
    assert record.policies == {"mixed_bfloat16"}, "every convolution computes in bfloat16"
    assert record.kernel_dtypes == {"float32"} and record.logits_dtype == "float32", (
        "weights and logits stay float32"
    )
    assert keras.config.dtype_policy().name == "float32", (
        "the global policy is restored after the run"
    )
    assert json.loads((out / "config.json").read_text())["mixed_precision"] == "mixed_bfloat16"
    assert all(np.isfinite(float(r["loss"])) for r in read_log(out / "log.csv"))
    assert 0.0 <= results["accuracy"]["2"] <= 1.0
    with pytest.raises(ValueError, match="mixed_precision: saved 'mixed_bfloat16', now 'float32'"):
        train(
            "mimoconv-10-2.fashion-mnist-n2",
            out,
            quick=True,
            data_dir=fashion_dir,
            verbose=0,
            steps_per_epoch=2,
        )


def test_lazy_isometry_run_records_itself_and_the_baseline_refuses_it(tmp_path, fashion_dir):
    from keras_mimo.training import train

    class RecordScales(keras.callbacks.Callback):
        scales = []

        def on_train_batch_end(self, batch, logs=None):
            self.scales.append(self.model.isometry_scale)

    out = tmp_path / "lazy"
    train(
        "mimoconv-10-2.fashion-mnist-n2",
        out,
        quick=True,
        data_dir=fashion_dir,
        verbose=0,
        steps_per_epoch=4,
        isometry_every=2,
        extra_callbacks=[RecordScales()],
    )
    assert RecordScales.scales == [2.0, 0.0, 2.0, 0.0] * 2, (
        "two epochs of four batches, every other one regularised"
    )
    assert json.loads((out / "config.json").read_text())["isometry_every"] == 2
    with pytest.raises(ValueError, match="isometry_every: saved 2, now 1"):
        train(
            "mimoconv-10-2.fashion-mnist-n2",
            out,
            quick=True,
            data_dir=fashion_dir,
            verbose=0,
            steps_per_epoch=4,
        )
    assert re.search(
        r"isometry_every=4: wrn-10-2.fashion-mnist-quick's model \(wrn-10-2\) has no isometry "
        "regulariser",
        cli_error(
            "train",
            "--recipe",
            "wrn-10-2.fashion-mnist",
            "--quick",
            "--isometry-every",
            "4",
            "--output",
            str(tmp_path / "wrn"),
        ),
    )
    assert not (tmp_path / "wrn").exists(), "refused before any run folder is made"


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "epochs=0 must be a positive integer"),
        (
            ["--batch-size", "-2"],
            r"batch_size=-2 must be a positive integer \(superpositions per batch\)",
        ),
        (["--lr", "nan"], "lr=nan must be a finite number > 0"),
        (["--mixup-alpha", "-1"], "mixup_alpha=-1.0 must be a number >= 0"),
        (["--steps-per-epoch", "0"], "steps_per_epoch=0 must be a positive integer"),
        (["--superpositions", "2,x"], "--superpositions '2,x' must be comma-separated integers"),
        (
            ["--superpositions", "4"],
            r"capacity 2, so it can be validated at N in \[1, 2\] only, not \[4\]",
        ),
    ],
)
def test_bad_overrides_are_refused_before_any_run_folder(tmp_path, flags, message):
    error = cli_error(
        "train",
        "--recipe",
        "mimoconv-10-2.fashion-mnist-n2",
        "--quick",
        *flags,
        "--output",
        tmp_path / "run",
    )
    assert re.search(message, error), error
    assert not (tmp_path / "run").exists()


def test_a_recipe_checks_its_own_fields_and_train_checks_n_against_the_capacity(tmp_path):
    from keras_mimo.training import get_recipe, train

    recipe = get_recipe("mimoconv-10-2.fashion-mnist-dynamic")
    with pytest.raises(ValueError, match="dynamic_p=1.5 must be a probability"):
        recipe.replace(dynamic_p=1.5)
    with pytest.raises(
        ValueError, match=r"eval_superpositions=\(4, 0\) must hold positive integers"
    ):
        recipe.replace(eval_superpositions=(4, 0))
    with pytest.raises(ValueError, match="dynamic_low=3: .* the lower N must be one of"):
        train(recipe.replace(dynamic_low=3), tmp_path / "run", quick=True)
    with pytest.raises(ValueError, match="steps_per_epoch=0 must be a positive integer"):
        train(recipe, tmp_path / "run", quick=True, steps_per_epoch=0)
    assert not (tmp_path / "run").exists()


def test_float16_is_refused_for_image_recipes_with_the_reason():
    assert re.search(
        "float16' is not available for the image recipes: it needs loss scaling",
        cli_error(
            "train",
            "--recipe",
            "mimoconv-10-2.fashion-mnist-n2",
            "--quick",
            "--mixed-precision",
            "float16",
        ),
    )


def test_no_augment_turns_flips_off_is_image_only_and_is_reproduced_by_the_train_command():
    from keras_mimo.cli import build_parser
    from keras_mimo.cli.train import recipe_arguments
    from keras_mimo.presets.zoo import train_command

    parser = build_parser()
    recipe, options = recipe_arguments(
        parser.parse_args(["train", "--recipe", "mimoconv-10-2.mnist-dynamic", "--no-augment"])
    )
    assert recipe.augment is False and options["augment"] is False
    recipe, options = recipe_arguments(
        parser.parse_args(["train", "--recipe", "mimoconv-10-2.mnist-dynamic"])
    )
    assert recipe.augment is True and "augment" not in options
    config = dict(name="mimoconv-10-2.mnist-dynamic", model_overrides={})
    assert "--no-augment" in train_command(dict(config, augment=False), "runs/x")
    assert "--no-augment" not in train_command(dict(config, augment=True), "runs/x")
    error = cli_error("train", "--recipe", "performer-listops.listops", "--no-augment")
    assert "--no-augment cannot be used with performer-listops.listops" in error


@pytest.mark.parametrize(
    "flags",
    [
        "--recipe mimoformer-att-listops.listops --lr 0.001 --steps 2000 --eval-frequency 100 "
        "--eval-steps 32 --grid 2x2 --max-length 512 --model-override embedding_dim=64",
        "--recipe mimoconv-10-2.mnist-dynamic --epochs 45 --no-augment "
        "--model-override initial_width=1 --model-override stem_stride=2",
    ],
)
def test_a_runs_train_command_resolves_to_the_same_recipe(flags):
    import dataclasses
    import shlex

    from keras_mimo.cli import build_parser
    from keras_mimo.cli.train import recipe_arguments
    from keras_mimo.presets.zoo import train_command

    parser = build_parser()
    recipe, _ = recipe_arguments(parser.parse_args(["train", *shlex.split(flags)]))
    command = train_command(dataclasses.asdict(recipe), "runs/x")
    words = shlex.split(command)
    assert words[:2] == ["keras-mimo", "train"]
    if "--data-dir" in words:  # the placeholder of an LRA run's data folder
        at = words.index("--data-dir")
        assert words[at + 1] == "DATA"
        del words[at : at + 2]
    again, _ = recipe_arguments(parser.parse_args(words[1:]))
    assert again == recipe, command
