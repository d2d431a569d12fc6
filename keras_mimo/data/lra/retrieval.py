"""Retrieval (Long Range Arena): ACL Anthology Network document pairs as two byte-token sequences.

Reads the LRA release's ``tsv_data/new_aan_pairs.{train,eval,test}.tsv`` as LRA's
``matching/input_pipeline.py`` does: no header, tab-separated, quotes not special, five columns
``label`` (a float, 0 or 1), ``id1``, ``id2``, ``text1``, ``text2``. Each text is cut to its first
10000 bytes, turned into byte tokens ``byte + 1`` (tokenizer 'char', vocabulary 257), truncated to
``max_length`` (4000) and right-padded with 0. 'dev' reads ``eval``.
"""

import os

from keras_mimo.data.lra import _common
from keras_mimo.registry.datasets import DATASETS

RETRIEVAL_VOCAB_SIZE = DATASETS["retrieval"].vocab_size
RETRIEVAL_NUM_CLASSES = DATASETS["retrieval"].num_classes
RETRIEVAL_COLUMNS = ("label", "id1", "id2", "text1", "text2")
_SPLIT_FILE = {"train": "train", "dev": "eval", "test": "test"}
_BYTE_LIMIT = 10000


def retrieval_split_path(data_dir, split):
    return os.path.join(
        data_dir, f"new_aan_pairs.{_SPLIT_FILE[_common.normalize_split(split)]}.tsv"
    )


def retrieval_dataset(
    data_dir,
    split="train",
    *,
    batch_size=32,
    grid=1,
    max_length=4000,
    seed=0,
    shuffle=None,
    shuffle_buffer=2048,
    drop_remainder=None,
    repeat=False,
):
    """AAN pairs as ``((tokens1, tokens2), label)`` batches, tokens int32 [B * M * N, max_length],
    label int32.

    ``data_dir`` is the release's ``lra_release/tsv_data`` folder (``lra_release`` itself
    works too).
    """
    tf = _common._tf()
    split = _common.normalize_split(split)
    if data_dir is not None:
        data_dir = os.fspath(data_dir)
        if not os.path.isfile(retrieval_split_path(data_dir, "train")):
            inner = _common.find_in(data_dir, ["tsv_data", os.path.join("lra_release", "tsv_data")])
            data_dir = inner or data_dir
    path = None if data_dir is None else retrieval_split_path(data_dir, split)
    if path is None or not os.path.isfile(path):
        raise _common.LRADataNotFoundError(
            f"LRA Retrieval file {path or 'new_aan_pairs.<split>.tsv'} not found "
            f"(data_dir={data_dir!r}). "
            "It is part of the LRA release: " + _common.release_hint("tsv_data")
        )
    raw = tf.data.experimental.CsvDataset(
        path,
        [tf.float32, tf.string, tf.string, tf.string, tf.string],
        field_delim="\t",
        use_quote_delim=False,
        header=False,
    )
    max_length = int(max_length)

    def encode(label, id1, id2, text1, text2):
        t1 = _common.byte_tokens(text1, max_length, byte_limit=_BYTE_LIMIT)
        t2 = _common.byte_tokens(text2, max_length, byte_limit=_BYTE_LIMIT)
        return (t1, t2), tf.cast(label, tf.int32)

    return _common.finish(
        raw,
        _common.mapper(encode),
        batch_size=batch_size,
        grid=grid,
        training=split == "train",
        seed=seed,
        shuffle=shuffle,
        shuffle_buffer=shuffle_buffer,
        drop_remainder=drop_remainder,
        repeat=repeat,
    )
