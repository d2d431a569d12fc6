"""Text (Long Range Arena): IMDB movie reviews as byte-level tokens, via tensorflow-datasets.

As LRA's ``text_classification/input_pipeline.py`` with ``tokenizer='char'``: each review's UTF-8
bytes become tokens ``byte + 1`` (tfds' ByteTextEncoder), so 0 is free for padding; reviews are
truncated to ``max_length`` (LRA: 1000; 4000 in the long variant) and right-padded with 0.
Vocabulary size 257, 2 classes. IMDB has no validation split: LRA, and this loader, use the test
split for 'dev' too.
"""

from keras_mimo.data.lra import _common, _tfds
from keras_mimo.registry.datasets import DATASETS

TEXT_VOCAB_SIZE = DATASETS["text"].vocab_size
TEXT_NUM_CLASSES = DATASETS["text"].num_classes
_TFDS_SPLIT = {"train": "train", "dev": "test", "test": "test"}


def imdb_bytes_dataset(
    split="train",
    *,
    data_dir=None,
    download=False,
    batch_size=32,
    grid=1,
    max_length=1000,
    seed=0,
    shuffle=None,
    shuffle_buffer=256,
    drop_remainder=None,
    repeat=False,
):
    """IMDB reviews as ``(tokens int32 [B * M * N, max_length], label int32 [B * M * N])`` batches.

    ``data_dir`` is a tensorflow-datasets folder in which ``imdb_reviews`` is prepared (None: tfds'
    default folder). Without it a :class:`LRADataNotFoundError` says how to get it, unless
    ``download=True``. Batching as :func:`keras_mimo.data.lra.listops_dataset`.
    """
    tf = _common._tf()
    split = _common.normalize_split(split)
    builder = _tfds.prepared_builder("imdb_reviews", data_dir, download, "LRA Text (IMDB)")
    raw = builder.as_dataset(split=_TFDS_SPLIT[split], shuffle_files=False)
    max_length = int(max_length)

    def encode(example):
        return _common.byte_tokens(example["text"], max_length), tf.cast(example["label"], tf.int32)

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
