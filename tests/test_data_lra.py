"""Long Range Arena data: the ListOps generator and evaluator, and every loader run on small files
written here."""

import csv
import os
import random

import keras
import numpy as np
import pytest
import tensorflow as tf  # the loaders are tf.data pipelines on every Keras backend
import tensorflow_datasets as tfds

from keras_mimo.data import lra
from keras_mimo.data.lra import LRADataNotFoundError
from keras_mimo.data.lra import listops as listops_mod
from keras_mimo.data.lra import pathfinder as pathfinder_mod


def _batches(ds):
    return list(ds.as_numpy_iterator())


def _decode_listops(tokens):
    return " ".join(lra.LISTOPS_VOCAB[t] for t in tokens if t != 0)


# --------------------------------------------------------------------------------------------------
# ListOps: evaluator
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "source, value",
    [
        ("[MAX 2 9 ]", 9),
        ("( ( ( [MAX 2 ) 9 ) ] )", 9),
        ("[MIN 4 7 1 ]", 1),
        ("[MAX 2 9 [MIN 4 7 ] 0 ]", 9),  # the example of the ListOps paper
        ("[MED 3 1 2 ]", 2),  # odd count: the middle value
        ("[MED 1 2 ]", 1),  # even count: mean 1.5 truncated
        ("[MED 0 9 ]", 4),  # 4.5 -> 4
        ("[MED 1 8 2 7 ]", 4),  # sorted 1 2 7 8: (2 + 7) / 2 = 4.5 -> 4
        ("[MED 9 9 8 8 ]", 8),  # 8.5 -> 8
        ("[MED 4 4 ]", 4),
        ("[SM 9 9 9 ]", 7),  # 27 mod 10
        ("[SM 5 5 ]", 0),
        ("[SM 0 0 ]", 0),
        ("[SM [MED 1 2 ] [MAX 9 8 ] ]", 0),  # (1 + 9) mod 10
        ("[MIN [SM 9 9 ] [MAX 0 [MED 7 8 9 ] ] ]", 8),
        ("[FIRST 3 1 ]", 3),
        ("[LAST 3 1 ]", 1),
        ("[MAX 2 9 X", 9),  # tokenised form: X for ']'
        ("7", 7),
    ],
)
def test_evaluate_hand_written(source, value):
    assert lra.evaluate_listops(source) == value


def test_med_matches_numpy_median_truncated():
    rng = random.Random(5)
    for _ in range(500):
        args = [rng.randrange(10) for _ in range(rng.randint(2, 10))]
        src = "[MED " + " ".join(map(str, args)) + " ]"
        assert lra.evaluate_listops(src) == int(np.median(args)), args
        src = "[SM " + " ".join(map(str, args)) + " ]"
        assert lra.evaluate_listops(src) == sum(args) % 10


@pytest.mark.parametrize("bad", ["[MAX 2", "]", "[FOO 1 2 ]", "1 2", "[MAX ]", "[MAX 12 3 ]", ""])
def test_evaluate_rejects_malformed(bad):
    with pytest.raises(ValueError):
        lra.evaluate_listops(bad)


def test_tree_text_length_and_value():
    tree = ("[MAX", (2, 9))
    assert lra.listops_tree_to_string(tree) == "( ( ( [MAX 2 ) 9 ) ] )"
    assert lra.listops_tree_length(tree) == 4
    nested = ("[SM", (("[MED", (1, 2)), 9, ("[MIN", (4, 7, 3))))
    text = lra.listops_tree_to_string(nested)
    assert text == "( ( ( ( [SM ( ( ( [MED 1 ) 2 ) ] ) ) 9 ) ( ( ( ( [MIN 4 ) 7 ) 3 ) ] ) ) ] )"
    assert lra.listops_tree_value(nested) == lra.evaluate_listops(text) == (1 + 9 + 3) % 10
    assert lra.listops_tree_length(nested) == 2 + 4 + 1 + 5


# --------------------------------------------------------------------------------------------------
# ListOps: generator
# --------------------------------------------------------------------------------------------------
# The first four rows that LRA's own generator (lra_benchmarks/data/listops.py: generate_tree,
# to_string, to_value and its length filter) gives after random.seed(2021) with max_depth=4,
# max_args=4 and lengths strictly between 6 and 30: the same random draws in the same order must
# give the same trees.
LRA_ROWS_SEED_2021 = [
    ("( ( ( [MAX ( ( ( [SM 8 ) 8 ) ] ) ) ( ( ( ( ( [MAX 7 ) 4 ) 5 ) 1 ) ] ) ) ] )", 7),
    ("( ( ( [MED ( ( ( ( ( [MAX 3 ) 6 ) 4 ) 6 ) ] ) ) 7 ) ] )", 6),
    ("( ( ( [MIN ( ( ( [MIN 3 ) ( ( ( [MED 0 ) 5 ) ] ) ) ] ) ) 4 ) ] )", 2),
    ("( ( ( [MED ( ( ( ( [MED 9 ) 7 ) 3 ) ] ) ) 8 ) ] )", 7),
]


def test_generator_reproduces_lra_random_process():
    rows = lra.generate_listops(4, min_length=6, max_length=30, max_depth=4, max_args=4, seed=2021)
    assert rows == LRA_ROWS_SEED_2021


def _token_depth(source):
    depth = best = 0
    for tok in source.replace("(", " ").replace(")", " ").split():
        if tok.startswith("["):
            depth += 1
            best = max(best, depth)
        elif tok == "]":
            depth -= 1
    return best


def test_generated_labels_lengths_and_limits():
    rows = lra.generate_listops(300, min_length=10, max_length=80, max_depth=6, max_args=5, seed=1)
    assert len(rows) == 300
    assert len({s for s, _ in rows}) == 300  # distinct
    ops = set()
    for source, label in rows:
        assert lra.evaluate_listops(source) == label
        tokens = source.replace("(", " ").replace(")", " ").split()
        assert 10 < len(tokens) < 80
        assert _token_depth(source) <= 5  # the root has depth 1 and depth 6 is always a value
        ops.update(t for t in tokens if t.startswith("["))
    assert ops == set(lra.LISTOPS_OPERATORS)
    assert len({label for _, label in rows}) >= 8


def test_generator_depth_two_gives_flat_operators():
    rows = lra.generate_listops(100, min_length=0, max_length=50, max_depth=2, max_args=7, seed=4)
    counts = set()
    for source, label in rows:
        tokens = source.replace("(", " ").replace(")", " ").split()
        if len(tokens) == 1:
            continue  # a lone value (length 1 > min_length 0)
        assert tokens[0] in lra.LISTOPS_OPERATORS and tokens[-1] == "]"
        assert all(t.isdigit() for t in tokens[1:-1])
        counts.add(len(tokens) - 2)
    assert counts == set(range(2, 8))  # randint(2, max_args), both ends reached


def test_generator_deterministic_under_seed():
    a = lra.generate_listops(50, min_length=5, max_length=60, seed=7)
    b = lra.generate_listops(50, min_length=5, max_length=60, seed=7)
    c = lra.generate_listops(50, min_length=5, max_length=60, seed=8)
    assert a == b
    assert a != c
    with pytest.raises(ValueError):
        lra.generate_listops(1, min_length=10, max_length=11)


# --------------------------------------------------------------------------------------------------
# ListOps: files and loader
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def listops_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("listops")
    lra.write_listops_splits(
        str(d), num_train=42, num_dev=10, num_test=11, min_length=10, max_length=60, seed=3
    )
    return d


def _read_tsv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    return rows[0], [(s, int(t)) for s, t in rows[1:]]


def test_write_splits_files(listops_dir):
    names = sorted(os.listdir(listops_dir))
    assert names == ["basic_test.tsv", "basic_train.tsv", "basic_val.tsv"]
    with open(listops_dir / "basic_val.tsv", "rb") as f:
        assert f.readline() == b"Source\tTarget\r\n"  # csv writer with a tab, as LRA writes it
    sizes, sources = {}, set()
    for name in names:
        header, rows = _read_tsv(listops_dir / name)
        assert header == ["Source", "Target"]
        sizes[name] = len(rows)
        for s, t in rows:
            assert lra.evaluate_listops(s) == t
        sources.update(s for s, _ in rows)
    assert sizes == {"basic_train.tsv": 42, "basic_val.tsv": 10, "basic_test.tsv": 11}
    assert len(sources) == 63  # splits do not overlap
    again = lra.generate_listops(63, min_length=10, max_length=60, seed=3)
    assert _read_tsv(listops_dir / "basic_train.tsv")[1] == again[:42]


def test_listops_roundtrip_eval_keeps_order_and_remainder(listops_dir):
    _, rows = _read_tsv(listops_dir / "basic_val.tsv")
    ds = lra.listops_dataset(str(listops_dir), "dev", batch_size=2, grid=(1, 2), max_length=60)
    batches = _batches(ds)
    assert [x.shape for x, _ in batches] == [
        (4, 60),
        (4, 60),
        (2, 60),
    ]  # 10 = 4 + 4 + 2: nothing dropped
    tokens = np.concatenate([x for x, _ in batches])
    labels = np.concatenate([y for _, y in batches])
    assert tokens.dtype == np.int32 and labels.dtype == np.int32
    for (source, target), tok, lab in zip(rows, tokens, labels):
        n = len(source.replace("(", " ").replace(")", " ").split())
        mask = tok != 0
        assert mask.sum() == n and mask[:n].all() and not mask[n:].any()  # right padding with 0
        assert lab == target
        assert (
            _decode_listops(tok).split()
            == source.replace("(", " ").replace(")", " ").replace("]", "X").split()
        )
        assert lra.evaluate_listops(_decode_listops(tok)) == target


def test_listops_train_batches_shuffle_and_drop(listops_dir):
    def order(seed):
        ds = lra.listops_dataset(
            listops_dir, "train", batch_size=2, grid=(2, 2), max_length=60, seed=seed
        )
        b = _batches(ds)
        assert [x.shape for x, _ in b] == [(8, 60)] * 5  # B * M * N = 8; 42 -> 5 full batches
        return np.concatenate([x for x, _ in b])

    a, a2, c = order(0), order(0), order(1)
    np.testing.assert_array_equal(a, a2)
    assert not np.array_equal(a, c)
    file_tokens = np.stack(
        [
            x
            for x, _ in lra.listops_dataset(
                listops_dir, "train", batch_size=None, shuffle=False, max_length=60
            ).as_numpy_iterator()
        ]
    )
    assert file_tokens.shape == (42, 60)
    assert not np.array_equal(a, file_tokens[:40])  # shuffled
    file_set = {t.tobytes() for t in file_tokens}
    assert all(t.tobytes() in file_set for t in a) and len({t.tobytes() for t in a}) == 40


def test_listops_overflow_policies(tmp_path):
    rows = [("[MAX 1 2 3 4 5 6 ]", 6), ("( ( ( [SM 1 ) 2 ) ] )", 3)]
    path = tmp_path / "basic_test.tsv"
    listops_mod.write_listops_tsv(rows, str(path))
    (tmp_path / "basic_train.tsv").write_text("Source\tTarget\n")
    trunc = _batches(lra.listops_dataset(tmp_path, "test", batch_size=4, max_length=5))
    x, y = trunc[0]
    assert x.shape == (2, 5)
    np.testing.assert_array_equal(x[0], [12, 2, 3, 4, 5])  # first max_length tokens: [MAX 1 2 3 4
    np.testing.assert_array_equal(x[1], [14, 2, 3, 17, 0])
    np.testing.assert_array_equal(y, [6, 3])
    skipped = _batches(
        lra.listops_dataset(tmp_path, "test", batch_size=4, max_length=5, overflow="skip")
    )
    assert len(skipped) == 1 and skipped[0][0].shape == (1, 5) and skipped[0][1].tolist() == [3]
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_length=5"):
        _batches(
            lra.listops_dataset(tmp_path, "test", batch_size=4, max_length=5, overflow="error")
        )
    ok = _batches(
        lra.listops_dataset(tmp_path, "test", batch_size=4, max_length=9, overflow="error")
    )
    assert ok[0][0].shape == (2, 9)
    with pytest.raises(ValueError):
        lra.listops_dataset(tmp_path, "test", overflow="wrap")


def test_listops_loader_reads_lf_files_swapped_columns_and_unknown_tokens(tmp_path):
    (tmp_path / "basic_train.tsv").write_text("Target\tSource\n4\t( ( [MIN 4 ) [FOO ] )\n")
    (tmp_path / "basic_val.tsv").write_text("Source\tTarget\n[MAX 0 9 ]\t9\n")
    x, y = _batches(
        lra.listops_dataset(tmp_path, "train", batch_size=1, max_length=6, shuffle=False)
    )[0]
    np.testing.assert_array_equal(
        x[0], [11, 5, lra.LISTOPS_VOCAB_SIZE - 1, 17, 0, 0]
    )  # [FOO -> unknown id 18
    assert y.tolist() == [4]
    x, y = _batches(lra.listops_dataset(tmp_path, "val", batch_size=1, max_length=4))[0]
    np.testing.assert_array_equal(x[0], [12, 1, 10, 17])
    assert y.tolist() == [9]


def test_listops_missing_data_error(tmp_path):
    with pytest.raises(LRADataNotFoundError) as e:
        lra.listops_dataset(tmp_path / "nowhere", "train")
    msg = str(e.value)
    assert "python -m keras_mimo.data.listops_generator --output_dir" in msg
    assert "lra_release.gz" in msg and lra.LRA_RELEASE_URL in msg and "listops-1000" in msg
    assert isinstance(e.value, FileNotFoundError)


def test_listops_finds_release_layout_and_cli(tmp_path):
    out = tmp_path / "lra_release" / "listops-1000"
    assert (
        listops_mod.main(
            [
                "--output_dir",
                str(out),
                "--num_train",
                "5",
                "--num_dev",
                "3",
                "--num_test",
                "2",
                "--min_length",
                "4",
                "--max_length",
                "20",
                "--seed",
                "9",
            ]
        )
        == 0
    )
    ds = lra.listops_dataset(
        tmp_path, "test", batch_size=8, max_length=20
    )  # the folder above lra_release
    ((x, y),) = _batches(ds)
    assert x.shape == (2, 20)
    rows = lra.generate_listops(10, min_length=4, max_length=20, seed=9)[8:]
    assert y.tolist() == [t for _, t in rows]


# --------------------------------------------------------------------------------------------------
# tensorflow-datasets folders written by hand: imdb_reviews and cifar10
# --------------------------------------------------------------------------------------------------
def _write_tfds(data_dir, name, splits):
    """A prepared tfds dataset: real builder folder, tfrecord shards and dataset_info.json."""
    builder = tfds.builder(name, data_dir=str(data_dir))
    os.makedirs(builder.data_dir)
    features = builder.info.features
    for split, examples in splits.items():
        path = os.path.join(builder.data_dir, f"{name}-{split}.tfrecord-00000-of-00001")
        with tf.io.TFRecordWriter(path) as w:
            for ex in examples:
                w.write(features.serialize_example(ex))
    tfds.folder_dataset.write_metadata(
        data_dir=builder.data_dir,
        features=features,
        filename_template="{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_INDEX}-of-{NUM_SHARDS}",
    )


IMDB_TRAIN = [
    "A fine film.",
    'Terrible, "awful"\tand long; would not watch again!',
    "Caf\u00e9 sc\u00e8ne",
    "ok",
    "x" * 40,
]
IMDB_TEST = ["Great", "Bad movie, bad actors", "meh"]


@pytest.fixture(scope="module")
def imdb_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tfds_imdb")
    _write_tfds(
        d,
        "imdb_reviews",
        {
            "train": [{"text": t, "label": i % 2} for i, t in enumerate(IMDB_TRAIN)],
            "test": [{"text": t, "label": (i + 1) % 2} for i, t in enumerate(IMDB_TEST)],
            "unsupervised": [{"text": "unlabelled", "label": -1}],
        },
    )
    return d


def _bytes_plus_one(text, length):
    b = [c + 1 for c in text.encode("utf-8")][:length]
    return b + [0] * (length - len(b))


def test_text_bytes_from_tfds_folder(imdb_dir):
    ds = lra.imdb_bytes_dataset(
        "train", data_dir=imdb_dir, batch_size=5, max_length=16, shuffle=False
    )
    ((x, y),) = _batches(ds)
    assert x.shape == (5, 16) and x.dtype == np.int32 and y.dtype == np.int32
    for row, text in zip(x, IMDB_TRAIN):
        assert row.tolist() == _bytes_plus_one(text, 16)
    assert x[2].tolist()[:6] == [
        68,
        98,
        103,
        0xC3 + 1,
        0xA9 + 1,
        33,
    ]  # 'Caf', then UTF-8 bytes of e-acute
    assert x.max() <= 256 and (x[3, 2:] == 0).all()
    assert y.tolist() == [0, 1, 0, 1, 0]
    for split in ("dev", "test"):  # IMDB has no validation split: LRA evaluates on test for both
        b = _batches(lra.imdb_bytes_dataset(split, data_dir=imdb_dir, batch_size=2, max_length=8))
        assert [x.shape for x, _ in b] == [(2, 8), (1, 8)]  # remainder kept
        assert np.concatenate([y for _, y in b]).tolist() == [1, 0, 1]
        assert b[0][0][0].tolist() == _bytes_plus_one("Great", 8)


def test_text_train_batches_and_seed(imdb_dir):
    def run(seed):
        b = _batches(
            lra.imdb_bytes_dataset(
                "train", data_dir=imdb_dir, batch_size=1, grid=(1, 2), max_length=16, seed=seed
            )
        )
        assert [x.shape for x, _ in b] == [(2, 16), (2, 16)]  # 5 -> two full batches of 1 * 1 * 2
        return np.concatenate([x for x, _ in b])

    first = run(3)
    np.testing.assert_array_equal(first, run(3))
    assert not np.array_equal(first, run(4))


def test_text_missing_data_error(tmp_path):
    with pytest.raises(LRADataNotFoundError) as e:
        lra.imdb_bytes_dataset("train", data_dir=tmp_path / "empty")
    msg = str(e.value)
    assert f"tfds build imdb_reviews --data_dir {tmp_path / 'empty'}" in msg
    assert "download_and_prepare()" in msg and "download=True" in msg


def _grey_reference(rgb):
    """LRA's conversion spelled out: float32 weights on values / 255, times 255.5, truncated."""
    f = rgb.astype(np.float32) * np.float32(1.0 / 255.0)
    g = (f * np.array([0.2989, 0.5870, 0.1140], np.float32)).sum(-1, dtype=np.float32)
    return (g * np.float32(255.5)).astype(np.int32)


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tfds_cifar")
    rng = np.random.default_rng(0)
    train = [
        {"id": f"train_{i}", "image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), "label": i}
        for i in range(10)
    ]
    train[0]["image"][:] = 255  # white
    train[1]["image"][:] = 0  # black
    test = [
        {
            "id": f"test_{i}",
            "image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
            "label": 9 - i,
        }
        for i in range(3)
    ]
    _write_tfds(d, "cifar10", {"train": train, "test": test})
    return d, train, test


def test_image_grey_tokens_from_tfds_folder(cifar_dir):
    d, train, test = cifar_dir
    b = _batches(lra.cifar10_grey_dataset("train", data_dir=d, batch_size=4, shuffle=False))
    assert [x.shape for x, _ in b] == [
        (4, 1024),
        (4, 1024),
    ]  # train[:90%] = 9 images, last one dropped
    x = np.concatenate([x for x, _ in b])
    y = np.concatenate([y for _, y in b])
    assert y.tolist() == list(range(8)) and x.dtype == np.int32
    assert (x[0] == 255).all() and (x[1] == 0).all()
    for i in range(2, 8):
        np.testing.assert_array_equal(x[i], _grey_reference(train[i]["image"]).reshape(-1))
    dev = _batches(lra.cifar10_grey_dataset("dev", data_dir=d, batch_size=4))
    assert [x.shape for x, _ in dev] == [(1, 1024)] and dev[0][1].tolist() == [9]  # train[90%:]
    tst = _batches(lra.cifar10_grey_dataset("test", data_dir=d, batch_size=2, token_offset=1))
    assert [x.shape for x, _ in tst] == [(2, 1024), (1, 1024)]
    np.testing.assert_array_equal(tst[1][0][0], _grey_reference(test[2]["image"]).reshape(-1) + 1)
    assert np.concatenate([y for _, y in tst]).tolist() == [9, 8, 7]


def test_image_missing_data_error(tmp_path):
    with pytest.raises(LRADataNotFoundError, match="tfds build cifar10 --data_dir"):
        lra.cifar10_grey_dataset("test", data_dir=tmp_path)


# --------------------------------------------------------------------------------------------------
# Retrieval: AAN tsv files
# --------------------------------------------------------------------------------------------------
AAN_ROWS = [
    ("1.0", "P05-1001", "W04-2001", 'We parse "quoted" text', "Another paper's abstract"),
    ("0.0", "A00-1002", "J93-2004", "short", "x" * 50),
    ("1", "C02-1003", "P99-1009", "Unicode \u00fc", "b"),
]


def _write_aan(folder, splits):
    os.makedirs(folder, exist_ok=True)
    for split, rows in splits.items():
        with open(os.path.join(folder, f"new_aan_pairs.{split}.tsv"), "w", encoding="utf-8") as f:
            for r in rows:
                f.write("\t".join(r) + "\n")


def test_retrieval_pairs(tmp_path):
    folder = tmp_path / "lra_release" / "tsv_data"
    _write_aan(folder, {"train": AAN_ROWS * 3, "eval": AAN_ROWS, "test": AAN_ROWS[:2]})
    for where in (folder, tmp_path / "lra_release", tmp_path):
        b = _batches(lra.retrieval_dataset(where, "dev", batch_size=2, max_length=24))
        assert len(b) == 2
        (t1, t2), y = b[0]
        assert (
            t1.shape == (2, 24)
            and t2.shape == (2, 24)
            and t1.dtype == np.int32
            and y.dtype == np.int32
        )
        assert b[1][0][0].shape == (1, 24)  # eval keeps the remainder
        assert t1[0].tolist() == _bytes_plus_one(AAN_ROWS[0][3], 24)  # quotes are plain characters
        assert t2[1].tolist() == _bytes_plus_one("x" * 50, 24)
        assert b[1][0][0][0].tolist() == _bytes_plus_one("Unicode \u00fc", 24)
        assert np.concatenate([y for _, y in b]).tolist() == [1, 0, 1]
    tr = _batches(
        lra.retrieval_dataset(folder, "train", batch_size=2, grid=2, max_length=8, seed=1)
    )
    assert [(t1.shape, t2.shape) for (t1, t2), _ in tr] == [
        ((4, 8), (4, 8)),
        ((4, 8), (4, 8)),
    ]  # 9 -> 2 x 4
    pairs = {(a.tobytes(), b.tobytes(), int(c)) for (t1, t2), y in tr for a, b, c in zip(t1, t2, y)}
    truth = {
        (
            np.array(_bytes_plus_one(r[3], 8), np.int32).tobytes(),
            np.array(_bytes_plus_one(r[4], 8), np.int32).tobytes(),
            int(float(r[0])),
        )
        for r in AAN_ROWS
    }
    assert pairs <= truth and len(pairs) == 3  # the documents stay paired with their label


def test_retrieval_missing_data_error(tmp_path):
    with pytest.raises(LRADataNotFoundError) as e:
        lra.retrieval_dataset(tmp_path, "test")
    assert "new_aan_pairs.test.tsv" in str(e.value) and "lra_release.gz" in str(e.value)
    assert "tsv_data" in str(e.value)


# --------------------------------------------------------------------------------------------------
# Pathfinder: a tiny release-style folder with PNGs and metadata
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pathfinder_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("pf") / "lra_release"
    folder = root / "pathfinder32" / "curv_contour_length_14"
    rng = np.random.default_rng(1)
    images = {}
    lines = {0: [], 1: []}
    for k in (0, 1):
        os.makedirs(folder / "imgs" / str(k))
        for i in range(10):
            img = rng.integers(0, 256, (32, 32, 1), dtype=np.uint8)
            img[0, 0, 0] = 0
            name = f"sample_{i}.png"
            path = folder / "imgs" / str(k) / name
            tf.io.write_file(str(path), tf.io.encode_png(img))
            label = (i + k) % 2
            images[str(path)] = (img.reshape(-1).astype(np.int32), label)
            lines[k].append(f"imgs/{k} {name} {i} {label} 2 1.5 14\n")
    (folder / "imgs" / "1" / "sample_10.png").write_bytes(b"")  # the release has a few empty files
    lines[1].append("imgs/1 sample_10.png 10 1 2 1.5 14\n")
    os.makedirs(folder / "metadata")
    for k in (0, 1):
        (folder / "metadata" / f"{k}.npy").write_text("".join(lines[k]))
    return root, images


def test_pathfinder_tokens_and_splits(pathfinder_root):
    root, images = pathfinder_root
    seen = {}
    shapes = {}
    for split in ("train", "dev", "test"):  # 21 entries cut 16 / 2 / 3; one image file is empty
        b = _batches(
            lra.pathfinder_dataset(root, split, batch_size=4, drop_remainder=False, shuffle=False)
        )
        shapes[split] = [x.shape for x, _ in b]
        for x, y in b:
            assert x.dtype == np.int32 and y.dtype == np.int32
            for tok, lab in zip(x, y):
                seen.setdefault(split, []).append((tok.tobytes(), int(lab)))
    truth = {tok.tobytes(): lab for tok, lab in images.values()}
    allseen = [s for v in seen.values() for s in v]
    assert (
        len(allseen) == 20 and len({t for t, _ in allseen}) == 20
    )  # every image once, the empty one skipped
    assert all(truth[t] == lab for t, lab in allseen)
    examples = lra.pathfinder_examples(root)
    expected = {}
    for split in ("train", "dev", "test"):
        part = pathfinder_mod.pathfinder_split(examples, split, split_seed=0)
        expected[split] = sum(os.path.getsize(p) > 0 for p, _ in part)
    assert sum(expected.values()) == 20
    assert {k: sum(s[0] for s in v) for k, v in shapes.items()} == expected
    assert all(s[1] == 1024 for v in shapes.values() for s in v)
    x, _ = _batches(
        lra.pathfinder_dataset(root, "test", batch_size=8, token_offset=1, shuffle=False)
    )[0]
    assert x.min() >= 1 and (x[:, 0] == 1).all()  # pixel (0, 0) is black: token 0 + 1


def test_pathfinder_folder_forms_seeds_and_training_batches(pathfinder_root):
    root, _ = pathfinder_root
    folders = [root, root / "pathfinder32", root / "pathfinder32" / "curv_contour_length_14"]
    ref = lra.pathfinder_examples(folders[0])
    for f in folders[1:]:
        assert lra.pathfinder_examples(f, difficulty="curv_contour_length_14") == ref
    assert len(ref) == 21 and ref[0][0].endswith(os.path.join("imgs", "0", "sample_0.png"))
    a = _batches(lra.pathfinder_dataset(root, "train", batch_size=1, grid=(2, 2), seed=5))
    b = _batches(lra.pathfinder_dataset(root, "train", batch_size=1, grid=(2, 2), seed=5))
    assert all(x.shape == (4, 1024) for x, _ in a) and len(a) in (3, 4)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    other = lra.pathfinder_dataset(root, "test", split_seed=1, batch_size=8, shuffle=False)
    first = lra.pathfinder_dataset(root, "test", split_seed=0, batch_size=8, shuffle=False)
    assert not np.array_equal(_batches(other)[0][0], _batches(first)[0][0])


def test_pathfinder_missing_data_error(pathfinder_root, tmp_path):
    root, _ = pathfinder_root
    with pytest.raises(LRADataNotFoundError) as e:
        lra.pathfinder_dataset(root, "train", difficulty="easy")
    assert "curv_baseline" in str(e.value) and "lra_release.gz" in str(e.value)
    with pytest.raises(LRADataNotFoundError, match="pathfinder32"):
        lra.pathfinder_dataset(tmp_path, "train")
    with pytest.raises(ValueError):
        lra.pathfinder_dataset(root, "train", difficulty="impossible")


# --------------------------------------------------------------------------------------------------
# batching, masks and the Keras backend
# --------------------------------------------------------------------------------------------------
def test_split_and_grid_helpers():
    assert [
        lra.normalize_split(s)
        for s in ("train", "val", "valid", "validation", "eval", "dev", "test")
    ] == ["train", "dev", "dev", "dev", "dev", "dev", "test"]
    with pytest.raises(ValueError):
        lra.normalize_split("holdout")
    assert lra.grid_size(3) == 3 and lra.grid_size((2, 4)) == 8
    with pytest.raises(ValueError):
        lra.grid_size(0)
    with pytest.raises(ValueError, match="Unknown Long Range Arena task .music."):
        lra.lra_dataset("music", "train")


@pytest.mark.filterwarnings(
    "ignore:Your input ran out of data"
)  # keras, at the end of a dataset of unknown size
def test_batches_train_and_predict_on_backend(listops_dir):
    """The pipelines feed keras fit/evaluate/predict on the active backend; predict covers every dev
    example."""
    train = lra.lra_dataset(
        "listops",
        "train",
        data_dir=listops_dir,
        batch_size=2,
        grid=(2, 2),
        max_length=60,
        repeat=True,
    )
    dev = lra.listops_dataset(listops_dir, "dev", batch_size=3, grid=(1, 1), max_length=60)
    x, _ = next(iter(dev))
    mask = keras.ops.not_equal(keras.ops.convert_to_tensor(np.asarray(x)), 0)
    assert int(keras.ops.sum(keras.ops.cast(mask, "int32"))) == int(np.count_nonzero(np.asarray(x)))
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((60,), dtype="int32"),
            keras.layers.Embedding(lra.LISTOPS_VOCAB_SIZE, 8, mask_zero=True),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(lra.LISTOPS_NUM_CLASSES),
        ]
    )
    model.compile(
        optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    hist = model.fit(
        train, epochs=1, steps_per_epoch=7, shuffle=False, verbose=0
    )  # 56 > 42: it repeats
    assert np.isfinite(hist.history["loss"][0])
    pred = model.predict(dev, verbose=0)
    assert pred.shape == (10, 10)  # 3 + 3 + 3 + 1: the last, short batch is predicted too
    assert np.isfinite(model.evaluate(dev, verbose=0))
