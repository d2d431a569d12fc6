"""The benchmark command end to end, at a tiny size, on the active backend; its pieces alone."""

import csv
import json
import logging
import os
import pathlib
import sys
import time

import keras
import pytest

from keras_mimo.bench import mimoconv, mimoformer, timing
from keras_mimo.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The columns of the result files: the CSVs measured so far must stay comparable with new ones.
MIMOCONV_COLUMNS = (
    "implementation,backend,model,depth,width,initial_width,capacity,superposition,batch,"
    "image_size,compile,median_s,images_per_s,speedup_vs_n1,params,threads,cpu,timestamp"
).split(",")
MIMOFORMER_COLUMNS = (
    "implementation,backend,model,attention,grid,batch,seq_length,embedding_dim,num_layers,"
    "random_features,compile,median_s,sequences_per_s,speedup_vs_1x1,params,threads,cpu,timestamp"
).split(",")
TINY_MIMOCONV = (
    "--depth 10 --width 1 --initial-width 1 --batch 8 --image-size 8 --warmup 0 --repeats 1"
).split()
TINY_MIMOFORMER = (
    "--family mimoformer --grids 1x1,2x2 --batch 4 --seq-length 16 --embedding-dim 8 "
    "--num-layers 1 --random-features 8 --warmup 0 --repeats 1"
).split()


@pytest.fixture(autouse=True)
def restore_process_state():
    """main() quiets the process (environment, loggers, an import hook): undo it after each test."""
    environ = dict(os.environ)
    levels = {name: logging.getLogger(name).level for name in ("tensorflow", "absl")}
    meta_path = list(sys.meta_path)
    yield
    os.environ.clear()
    os.environ.update(environ)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    sys.meta_path[:] = meta_path


def test_bench_writes_table_csv_and_json(tmp_path, capsys):
    assert main(["bench", *TINY_MIMOCONV, "--output", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    backend = keras.backend.backend()
    (csv_path,) = tmp_path.glob("bench-*.csv")
    (json_path,) = tmp_path.glob("bench-*.json")
    with open(csv_path) as handle:
        assert next(csv.reader(handle)) == MIMOCONV_COLUMNS
    with open(csv_path) as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{k: str(v) for k, v in r.items()} for r in json.loads(json_path.read_text())]
    assert [(r["model"], r["superposition"]) for r in rows] == [
        ("WideResNet", "1"),
        ("MIMOConv", "1"),
        ("MIMOConv", "2"),
        ("MIMOConv", "4"),
    ]
    assert all(r["backend"] == backend and float(r["images_per_s"]) > 0 for r in rows)
    assert float(rows[1]["speedup_vs_n1"]) == 1.0
    assert backend in table and "MIMOConv" in table
    assert not list(tmp_path.glob("*.partial"))


def test_mimoformer_bench_covers_attention_and_models_at_every_grid(tmp_path, capsys):
    assert main(["bench", *TINY_MIMOFORMER, "--output", str(tmp_path)]) == 0
    (csv_path,) = tmp_path.glob("bench-mimoformer-*.csv")
    with open(csv_path) as handle:
        assert next(csv.reader(handle)) == MIMOFORMER_COLUMNS
    with open(csv_path) as handle:
        rows = list(csv.DictReader(handle))
    assert sorted((r["model"], r["attention"], r["grid"]) for r in rows) == sorted(
        (model, kind, grid)
        for grid in ("1x1", "2x2")
        for model, kind in (("attention", "att"), ("MIMOFormer", "att"), ("MIMOFormer", "att+mlp"))
    )
    assert all(float(r["sequences_per_s"]) > 0 for r in rows)
    assert all(float(r["speedup_vs_1x1"]) == 1.0 for r in rows if r["grid"] == "1x1")
    table = capsys.readouterr().out
    assert "seq/s" in table and "att+mlp" in table


def test_result_columns_match_the_benchmarks_measured_so_far():
    assert mimoconv.FIELDS == MIMOCONV_COLUMNS
    assert mimoformer.FIELDS == MIMOFORMER_COLUMNS
    for path in sorted(ROOT.glob("*/benchmarks/*.csv")) + sorted(ROOT.glob("benchmarks/*.csv")):
        with open(path) as handle:
            header = next(csv.reader(handle))
        assert header in (MIMOCONV_COLUMNS, MIMOFORMER_COLUMNS), path


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--depth", "12"], "--depth 12 must be 6k + 4"),
        (["--superpositions", "1,3"], "must divide --capacity 4"),
        (["--superpositions", "1,two"], "must be comma-separated integers, e.g. 1,2,4"),
        (["--models", "resnet"], "unknown model(s) ['resnet']"),
        (["--backends", "mxnet"], "unknown backend(s) ['mxnet']"),
        (["--backends", "jax,"], "unknown backend(s) ['']"),
        (["--batch", "0"], "--batch 0 must be at least 1"),
        (["--width", "0"], "--width 0 must be at least 1"),
        (["--image-size", "0"], "--image-size 0 must be at least 1"),
        (["--repeats", "0"], "--repeats 0 must be at least 1"),
        (["--warmup", "-1"], "--warmup -1 must be at least 0"),
        (["--reference", "/nonexistent"], "holds no MIMOConv/src/superposition.py"),
        (["--family", "mimoformer", "--grids", "2by2"], "item '2by2' must be two positive"),
        (["--family", "mimoformer", "--grids", "1x1,4x4", "--batch", "6"], "for grid 4x4"),
        (["--family", "mimoformer", "--embedding-dim", "7"], "must be even"),
        (["--family", "mimoformer", "--seq-length", "0"], "--seq-length 0 must be at least 1"),
    ],
)
def test_bench_rejects_bad_arguments_with_a_message_and_status_2(argv, message, tmp_path, capsys):
    assert main(["bench", "--output", str(tmp_path)] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("keras-mimo bench: error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_mimoformer_batch_message_names_a_batch_that_fits():
    options = dict(mimoformer.options_example(), grids=[(1, 1), (2, 2), (4, 2)], batch=6)
    with pytest.raises(ValueError, match=r"multiple of M \* N = 4 for grid 2x2.*--batch 8\."):
        mimoformer.check_options(options)


def test_options_examples_are_valid():
    mimoconv.check_options(mimoconv.options_example())
    mimoformer.check_options(mimoformer.options_example())


def test_interleaved_medians_ignore_warmup_and_outliers():
    calls = []
    durations = {"a": iter([0.0, 0.001, 0.05, 0.001]), "b": iter([0.0, 0.004, 0.004, 0.004])}

    def runner(name):
        def run():
            calls.append(name)
            time.sleep(next(durations[name]))

        return run

    seconds = timing.interleaved_medians({"a": runner("a"), "b": runner("b")}, warmup=1, repeats=3)
    assert calls == ["a", "b"] * 4  # the cases take turns in every round
    assert 0.0005 < seconds["a"] < 0.02 and 0.003 < seconds["b"] < 0.03


def test_selected_backends(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert timing.selected_backends("active") == ["jax"]
    assert timing.selected_backends("all") == ["tensorflow", "jax", "torch"]
    assert timing.selected_backends("torch, tensorflow") == ["torch", "tensorflow"]
    with pytest.raises(ValueError, match="unknown backend"):
        timing.selected_backends("theano")


def test_write_results_writes_whole_files_with_the_given_columns(tmp_path):
    rows = [dict(a=1, b="x"), dict(a=2, b="")]
    csv_path, json_path = timing.write_results(rows, tmp_path / "out", ["a", "b"], prefix="t")
    assert csv_path.name.startswith("t-") and csv_path.suffix == ".csv"
    assert csv_path.read_text().splitlines() == ["a,b", "1,x", "2,"]
    assert json.loads(json_path.read_text()) == [dict(a=1, b="x"), dict(a=2, b="")]
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir()) == [".csv", ".json"]


def test_tables_keep_their_layout():
    rows = [
        dict(
            implementation="keras-mimo",
            backend="jax",
            model="MIMOConv",
            superposition=2,
            batch=256,
            images_per_s=1234.56,
            speedup_vs_n1=1.875,
            median_s=0.20736,
        ),
        dict(
            implementation="reference",
            backend="torch-2.13.0",
            model="WideResNet",
            superposition=1,
            batch=256,
            images_per_s=99.0,
            speedup_vs_n1="",
            median_s=2.58,
        ),
    ]
    assert mimoconv.format_table(rows).splitlines() == [
        "implementation backend           model        N  batch   images/s   x N=1  ms/batch",
        "-----------------------------------------------------------------------------------",
        "keras-mimo     jax               MIMOConv     2    256     1234.6   1.875     207.4",
        "reference      torch-2.13.0      WideResNet   1    256       99.0            2580.0",
    ]


def test_speedups_and_reference_ratios():
    def row(implementation, backend, model, n, rate):
        return dict(
            implementation=implementation,
            backend=backend,
            model=model,
            superposition=n,
            images_per_s=rate,
        )

    rows = mimoconv.add_speedups(
        [
            row("keras-mimo", "jax", "MIMOConv", 1, 100.0),
            row("keras-mimo", "jax", "MIMOConv", 4, 250.0),
            row("keras-mimo", "torch", "MIMOConv", 4, 300.0),
            row("keras-mimo", "jax", "WideResNet", 1, 90.0),
            row("reference", "torch-2", "MIMOConv", 4, 150.0),
        ]
    )
    assert [r["speedup_vs_n1"] for r in rows] == [1.0, 2.5, "", "", ""]
    assert mimoconv.reference_ratios(rows) == {("MIMOConv", 4): ("torch", 2.0)}


def test_worker_module_without_worker_arguments_runs_the_command(tmp_path):
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "keras_mimo.bench", "--depth", "12", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("keras-mimo bench: error: --depth 12")
