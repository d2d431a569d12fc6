"""Training MIMOFormer / Performer with the LRA recipes: CyclicAdamW against torch, recipe
resolution, the
``keras-mimo train --recipe mimoformer-*`` path end to end on small real pipelines, resume, and bad
flags."""

import csv
import json
import os

import keras
import numpy as np
import pytest

from keras_mimo.registry import UnknownNameError
from keras_mimo.training import train
from keras_mimo.training.optimizers import CyclicAdamW
from keras_mimo.training.recipes import get_recipe, list_recipes, resolve_recipe
from keras_mimo.training.schedules import OneCycleLR, OneCycleMomentum


def read_log(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def run_cli(*args):
    from keras_mimo import cli

    return cli.main(list(map(str, args)))


def cli_error(capsys, *args):
    """The one-line message of a command-line mistake (exit status 2, no traceback)."""
    capsys.readouterr()
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


_RECIPE_NAMES = list_recipes("lra")


# ------------------------------------------------------------------------------------------------
# optimizer
def test_cyclic_adamw_follows_torch_adamw_with_linear_one_cycle():
    """6 updates through model.fit equal torch.optim.AdamW + OneCycleLR(anneal_strategy='linear'),
    beta_1 cycled."""
    import torch

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 5)).astype("float32")
    y = rng.normal(size=(48, 3)).astype("float32")
    w0 = rng.normal(size=(5, 3)).astype("float32")
    b0 = rng.normal(size=(3,)).astype("float32")
    total, lr, warmup = 6, 0.05, 2

    linear = torch.nn.Linear(5, 3)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w0.T))
        linear.bias.copy_(torch.from_numpy(b0))
    torch_optimizer = torch.optim.AdamW(
        linear.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01
    )
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        torch_optimizer, lr, total_steps=total, pct_start=warmup / total, anneal_strategy="linear"
    )
    betas = []
    for step in range(total):
        batch = slice(8 * step, 8 * step + 8)
        betas.append(torch_optimizer.param_groups[0]["betas"][0])
        torch_optimizer.zero_grad()
        loss = ((linear(torch.from_numpy(x[batch])) - torch.from_numpy(y[batch])) ** 2).mean()
        loss.backward()
        torch_optimizer.step()
        scheduler.step()

    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    model.layers[0].set_weights([w0, b0])
    beta_1 = OneCycleMomentum(total, warmup / total, 0.85, 0.95, anneal_strategy="linear")
    optimizer = CyclicAdamW(
        OneCycleLR(lr, total, warmup / total, anneal_strategy="linear"),
        weight_decay=0.01,
        beta_1=beta_1,
        epsilon=1e-6,
    )
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)

    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(beta_1(np.arange(total))), betas, rtol=1e-6
    )
    assert betas[0] == pytest.approx(0.95) and min(betas) == pytest.approx(0.85)
    kernel, bias = model.layers[0].get_weights()
    np.testing.assert_allclose(kernel, linear.weight.detach().numpy().T, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bias, linear.bias.detach().numpy(), rtol=1e-4, atol=1e-6)

    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, CyclicAdamW) and isinstance(restored.beta_1, OneCycleMomentum)
    assert restored.beta_1.anneal_strategy == "linear" and restored.epsilon == 1e-6
    with pytest.raises(ValueError, match="beta_1"):
        CyclicAdamW(beta_1=1.5)


# ------------------------------------------------------------------------------------------------
# recipes
def test_every_lra_architecture_has_its_reference_recipe():
    assert len(_RECIPE_NAMES) == 39  # 33 of the reference + 6 seq-fashion-mnist
    for name in _RECIPE_NAMES:
        recipe = resolve_recipe(name)
        assert recipe.family == "lra" and recipe.optimizer == "adamw"
        assert recipe.steps % recipe.eval_frequency == 0
        assert recipe.seed == 1234 and recipe.lr == 1e-4
        assert recipe.mimo_warmup_steps == (
            get_recipe(name).mimo_warmup_steps if name.startswith("mimoformer-att-") else 0
        )
        assert recipe.model_overrides == {}  # the architecture as the reference sizes it
        json.dumps(recipe.to_dict())  # stored as the run's config.json


def test_lra_recipe_overrides_and_errors():
    recipe = resolve_recipe(
        "mimoformer-att-listops.listops",
        steps=1001,
        eval_frequency=100,
        max_length=500,
        batch_size=32,
        warmup_steps=10,
        mimo_warmup_steps=20,
        seed=3,
        model_overrides=dict(embedding_dim=32, num_heads=2),
    )
    assert recipe.steps == 1100  # rounded up to whole evaluation blocks
    assert recipe.data_options["max_length"] == 500 and recipe.model_overrides["max_length"] == 512
    assert recipe.batch_bundles == 2 and recipe.seed == 3 and recipe.mimo_warmup_steps == 20
    assert recipe.model_overrides["embedding_dim"] == 32 and recipe.grid == (4, 4)
    quick = resolve_recipe("mimoformer-attmlp-listops.listops", quick=True)
    assert quick.name == "mimoformer-attmlp-listops.listops-quick" and quick.batch_size == 8
    assert quick.model_overrides["num_layers"] == 1 and quick.data_options["max_length"] == 64
    two_by_two = resolve_recipe("mimoformer-att-listops.listops", grid="2x2")
    assert two_by_two.grid == (2, 2) and two_by_two.model_overrides["capacity"] == [2, 2]
    assert two_by_two.batch_bundles == 16 and two_by_two.mimo_warmup_steps == 3000
    quick_grid = resolve_recipe("mimoformer-att-listops.listops", grid="2x2", quick=True)
    assert quick_grid.batch_size == 8 and quick_grid.batch_bundles == 2
    with pytest.raises(ValueError, match="grid must be 1 x 1"):
        resolve_recipe("performer-listops.listops", grid=(2, 2))
    with pytest.raises(ValueError, match="two positive integers"):
        resolve_recipe("mimoformer-att-listops.listops", grid="2x")
    with pytest.raises(ValueError, match="multiple of 16"):
        resolve_recipe("mimoformer-att-listops.listops", batch_size=40)
    with pytest.raises(ValueError, match="fixed size"):
        resolve_recipe("performer-image.image", max_length=256)
    with pytest.raises(ValueError, match="only applies to\n?.*mimoformer-att"):
        resolve_recipe("performer-listops.listops", mimo_warmup_steps=10)
    with pytest.raises(ValueError, match="below the number of steps"):
        resolve_recipe("performer-listops.listops", steps=100, eval_frequency=50, warmup_steps=100)
    with pytest.raises(UnknownNameError, match="Did you mean 'mimoformer-att-listops.listops'"):
        resolve_recipe("mimoformer-att-listops.listop")
    with pytest.raises(ValueError, match="applies to the Long Range Arena recipes only"):
        resolve_recipe("wrn-10-2.mnist", grid="2x2")
    for kwargs, message in [
        (dict(max_length=0), "max_length=0 must be a positive integer"),
        (dict(steps=2.5), "steps=2.5 must be a positive integer"),
        (dict(eval_steps=0), "eval_steps=0 must be a positive integer"),
        (dict(lr=float("inf")), "lr=inf must be a finite number > 0"),
        (dict(mimo_warmup_steps=-1), "mimo_warmup_steps=-1 must be an integer >= 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            resolve_recipe("mimoformer-att-listops.listops", **kwargs)


# ------------------------------------------------------------------------------------------------
# training
class GridRecorder(keras.callbacks.Callback):
    """The grid each training step ran at (MIMOWarmup switches it before the step; it must come
    first)."""

    def __init__(self):
        super().__init__()
        self.grids = []

    def on_train_batch_begin(self, batch, logs=None):
        self.grids.append(tuple(self.model.grid))


@pytest.mark.parametrize(
    "config", ["mimoformer-att-listops.listops", "mimoformer-attmlp-listops.listops"]
)  # performer: the CLI test
def test_quick_listops_runs_train_validate_and_test(tmp_path, config):
    out = tmp_path / config
    recorder = GridRecorder()
    results = train(
        config, out, quick=True, verbose=0, tensorboard=False, extra_callbacks=[recorder]
    )
    rows = read_log(out / "log.csv")
    full = tuple(get_recipe(config).grid)
    label = "grid" + "x".join(map(str, full))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    for key in (
        f"val_accuracy_{label}",
        "val_accuracy",
        "learning_rate",
        "beta_1",
        "steps_per_second",
        "train_time",
    ):
        assert key in rows[0], key
    assert [int(float(r["iterations"])) for r in rows] == [2, 4]
    assert float(rows[0]["beta_1"]) < 0.95 and float(rows[1]["beta_1"]) == pytest.approx(
        0.95
    )  # cycled back
    # The callbacks run after MIMOWarmup, so they see the grid each step used: 2 warm-up steps for
    # 'att.'.
    half = (max(1, full[0] // 2), max(1, full[1] // 2))
    expected = [half, half, full, full] if config.startswith("mimoformer-att-") else [full] * 4
    assert recorder.grids == expected
    assert results["steps"] == 4 and results["grid"] == list(full)
    for split in ("dev", "test"):
        assert 0.0 <= results[split]["accuracy"] <= 1.0 and np.isfinite(results[split]["loss"])
    assert (
        (out / "best.keras").exists()
        and (out / "last.keras").exists()
        and not list(out.glob(".tmp-*"))
    )
    assert (out / "listops-quick-data" / "basic_train.tsv").exists()
    # best.keras, evaluated at the full grid, scores what the run logged at its best step when the
    # validation
    # batches (2 of batch_size sequences) cover the whole quick dev split (16 sequences).
    recipe = resolve_recipe(config, quick=True)
    if 2 * recipe.batch_size >= 16:
        best_row = rows[results["best_dev_step"] // 2 - 1]
        assert results["dev"]["accuracy"] == pytest.approx(
            float(best_row["val_accuracy"]), abs=1e-6
        )


def test_quick_retrieval_trains_the_dual_model_on_release_files(tmp_path):
    folder = tmp_path / "lra_release" / "tsv_data"
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for split, count in (("train", 24), ("eval", 8), ("test", 8)):
        with open(folder / f"new_aan_pairs.{split}.tsv", "w", encoding="utf-8") as stream:
            for i in range(count):
                words = " ".join(rng.choice(["graph", "neural", "parse", "tree"], size=6))
                stream.write(f"{i % 2}\tdoc{i}a\tdoc{i}b\t{words}\t{words[::-1]}\n")
    results = train(
        "mimoformer-attmlp-retrieval.retrieval",
        tmp_path / "run",
        data_dir=tmp_path / "lra_release",
        quick=True,
        verbose=0,
        tensorboard=False,
    )
    assert results["grid"] == [4, 4] and results["steps"] == 4
    assert 0.0 <= results["test"]["accuracy"] <= 1.0


class CrashAfterFirstEvaluation(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated crash after the first evaluation")


def test_lra_run_resumes_at_the_schedule_and_warm_up_position(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(
            "mimoformer-att-listops.listops",
            out,
            quick=True,
            verbose=0,
            tensorboard=False,
            extra_callbacks=[CrashAfterFirstEvaluation()],
        )
    assert len(read_log(out / "log.csv")) == 1 and not (out / "results.json").exists()
    recorder = GridRecorder()
    results = train(
        "mimoformer-att-listops.listops",
        out,
        quick=True,
        verbose=0,
        tensorboard=False,
        extra_callbacks=[recorder],
    )
    rows = read_log(out / "log.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1] and int(float(rows[1]["iterations"])) == 4
    assert recorder.grids == [(4, 4), (4, 4)]  # the 2 warm-up steps were done before the crash
    assert float(rows[1]["learning_rate"]) == pytest.approx(
        1e-4 / 25 / 1e4, rel=1e-3
    )  # the schedule's end
    assert results["steps"] == 4
    with pytest.raises(ValueError, match="different configuration"):
        train(
            "mimoformer-att-listops.listops", out, quick=True, verbose=0, tensorboard=False, steps=8
        )


def test_train_cli_dispatches_lra_recipes_and_refuses_foreign_flags(tmp_path, capsys):
    err = cli_error(capsys, "train", "--recipe", "mimoformer-att-listops.listops", "--epochs", "3")
    assert "--epochs cannot be used with mimoformer-att-listops.listops" in err
    err = cli_error(capsys, "train", "--recipe", "wrn-10-2.fashion-mnist", "--max-length", "100")
    assert "--max-length cannot be used with wrn-10-2.fashion-mnist" in err
    err = cli_error(
        capsys, "train", "--recipe", "mimoformer-attmlp-listops.listops", "--batch-size", "6"
    )
    assert "multiple of 4" in err
    err = cli_error(
        capsys, "train", "--recipe", "performer-listops.listops", "--model-override", "pooling=mean"
    )
    assert "must be JSON" in err
    err = cli_error(
        capsys, "train", "--recipe", "performer-listops.listops", "--model-override", "widht=3"
    )
    assert "Performer has no argument 'widht'" in err
    assert run_cli("train", "--list") == 0
    listing = capsys.readouterr().out
    assert "mimoformer-att-listops" in listing and "performer-text-deep.text" in listing
    out = tmp_path / "cli"
    assert (
        run_cli(
            "train",
            "--recipe",
            "performer-listops.listops",
            "--quick",
            "--output",
            out,
            "--verbose",
            "0",
            "--no-tensorboard",
            "--model-override",
            'pooling="masked_mean"',
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    assert (
        config["model_overrides"]["pooling"] == "masked_mean"
        and config["mixed_precision"] == "float32"
    )
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 4
    capsys.readouterr()
    assert (
        run_cli(
            "evaluate",
            "--checkpoint",
            out / "best.keras",
            "--dataset",
            "listops",
            "--split",
            "test",
            "--data-dir",
            out / "listops-quick-data",
            "--batch-size",
            "2",
            "--json",
        )
        == 0
    )
    evaluated = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert evaluated["1x1"]["accuracy"] == pytest.approx(results["test"]["accuracy"], abs=1e-6)
    err = cli_error(capsys, "evaluate", "--checkpoint", out / "best.keras", "--dataset", "text")
    assert "trained on LRA listops, not text" in err
    # without --data-dir the quick data in the run folder are found again
    assert run_cli("evaluate", "--checkpoint", out / "best.keras", "--dataset", "listops") == 0
    err = cli_error(capsys, "evaluate", "--checkpoint", out / "best.keras", "--dataset", "mnist")
    assert "holds a Performer, which reads token sequences" in err
