"""The benchmark command end to end, at a tiny size, on the active backend."""

import csv
import json

import keras
import pytest

from keras_mimo import bench
from keras_mimo.cli import main


def test_bench_writes_table_csv_and_json(tmp_path, capsys):
    main(
        [
            "bench",
            "--depth",
            "10",
            "--width",
            "1",
            "--initial-width",
            "1",
            "--batch",
            "8",
            "--image-size",
            "8",
            "--warmup",
            "0",
            "--repeats",
            "1",
            "--output",
            str(tmp_path),
        ]
    )
    table = capsys.readouterr().out
    backend = keras.backend.backend()
    (csv_path,) = tmp_path.glob("bench-*.csv")
    (json_path,) = tmp_path.glob("bench-*.json")
    rows = list(csv.DictReader(open(csv_path)))
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


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--depth", "12"], "must be 6k \\+ 4"),
        (["--superpositions", "1,3"], "must divide --capacity 4"),
        (["--models", "resnet"], "unknown --models"),
        (["--backends", "mxnet"], "unknown backend"),
        (["--reference", "/nonexistent"], "holds no MIMOConv/src/superposition.py"),
    ],
)
def test_bench_rejects_bad_arguments(argv, message, tmp_path):
    with pytest.raises(SystemExit, match=message):
        main(["bench", "--output", str(tmp_path)] + argv)


def test_interleaved_medians_ignore_warmup_and_outliers():
    calls = []
    durations = {"a": iter([0.0, 0.001, 0.05, 0.001]), "b": iter([0.0, 0.004, 0.004, 0.004])}

    def runner(name):
        def run():
            import time

            calls.append(name)
            time.sleep(next(durations[name]))

        return run

    seconds = bench.interleaved_medians({"a": runner("a"), "b": runner("b")}, warmup=1, repeats=3)
    assert calls == ["a", "b"] * 4  # the cases take turns in every round
    assert 0.0005 < seconds["a"] < 0.02 and 0.003 < seconds["b"] < 0.03


def test_mimoformer_bench_covers_attention_and_models_at_every_grid(tmp_path, capsys):
    main(
        [
            "bench",
            "--family",
            "mimoformer",
            "--grids",
            "1x1,2x2",
            "--batch",
            "4",
            "--seq-length",
            "16",
            "--embedding-dim",
            "8",
            "--num-layers",
            "1",
            "--random-features",
            "8",
            "--warmup",
            "0",
            "--repeats",
            "1",
            "--output",
            str(tmp_path),
        ]
    )
    (csv_path,) = tmp_path.glob("bench-mimoformer-*.csv")
    rows = list(csv.DictReader(open(csv_path)))
    assert sorted((r["model"], r["attention"], r["grid"]) for r in rows) == sorted(
        (model, kind, grid)
        for grid in ("1x1", "2x2")
        for model, kind in (("attention", "att"), ("MIMOFormer", "att"), ("MIMOFormer", "att+mlp"))
    )
    assert all(float(r["sequences_per_s"]) > 0 for r in rows)
    assert all(float(r["speedup_vs_1x1"]) == 1.0 for r in rows if r["grid"] == "1x1")
    table = capsys.readouterr().out
    assert "seq/s" in table and "att+mlp" in table


def test_mimoformer_bench_checks_the_batch_against_the_grids(tmp_path):
    with pytest.raises(SystemExit, match="must be a multiple of M \\* N for grid 4x4"):
        main(
            [
                "bench",
                "--family",
                "mimoformer",
                "--grids",
                "1x1,4x4",
                "--batch",
                "6",
                "--output",
                str(tmp_path),
            ]
        )
    with pytest.raises(SystemExit, match="must look like MxN"):
        main(["bench", "--family", "mimoformer", "--grids", "2by2", "--output", str(tmp_path)])
