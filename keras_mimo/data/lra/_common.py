"""Pieces shared by the Long Range Arena loaders: errors, split names, byte tokens, batching.

Every loader returns a ``tf.data.Dataset``; Keras 3 consumes it on all three backends. TensorFlow is
imported lazily so that ``import keras_mimo.data.lra`` (and the pure-Python ListOps generator) work
without it.
"""

import os

LRA_RELEASE_URL = "https://storage.googleapis.com/long-range-arena/lra_release.gz"
LRA_RELEASE_BUCKET = "gs://long-range-arena/lra_release"

SPLITS = ("train", "dev", "test")
_SPLIT_ALIASES = {
    "train": "train",
    "dev": "dev",
    "val": "dev",
    "valid": "dev",
    "validation": "dev",
    "eval": "dev",
    "test": "test",
}

PAD_ID = 0


class LRADataNotFoundError(FileNotFoundError):
    """The files of a Long Range Arena task are not on this machine; the message says how to get
    them."""


def _tf():
    import tensorflow as tf

    return tf


def normalize_split(split):
    """'train', 'dev' or 'test' (also accepts 'val', 'valid', 'validation', 'eval' for 'dev')."""
    try:
        return _SPLIT_ALIASES[str(split).lower()]
    except KeyError:
        raise ValueError(
            f"split must be one of {SPLITS} (or val/valid/validation/eval), got {split!r}"
        ) from None


def grid_size(grid):
    """Inputs per superposition bundle: an int N, or a grid (M, N) giving M * N."""
    if isinstance(grid, int):
        size = grid
    else:
        size = 1
        for g in grid:
            size *= int(g)
    if size < 1:
        raise ValueError(f"grid must give at least one input per bundle, got {grid!r}")
    return size


def release_hint(folder_in_release):
    """The sentence that tells how to get the LRA release files."""
    return (
        f"Download the Long Range Arena release archive lra_release.gz from {LRA_RELEASE_URL} "
        f"(or copy {LRA_RELEASE_BUCKET} with gsutil), "
        f"extract it with `tar xzf lra_release.gz`, and pass "
        f"data_dir=<extracted>/lra_release/{folder_in_release} "
        f"(the lra_release folder itself works too)."
    )


def find_in(data_dir, candidates):
    """First existing path among ``data_dir/c`` for c in candidates, else None."""
    for c in candidates:
        p = os.path.join(data_dir, c)
        if os.path.exists(p):
            return p
    return None


def pad_or_truncate(tokens, max_length):
    """int32 [n] -> [max_length]: keep the first max_length tokens, right-pad with PAD_ID (0)."""
    tf = _tf()
    tokens = tokens[:max_length]
    tokens = tf.pad(tokens, [[0, max_length - tf.shape(tokens)[0]]], constant_values=PAD_ID)
    return tf.ensure_shape(tokens, [max_length])


def byte_tokens(text, max_length, byte_limit=None):
    """Byte-level tokens as LRA's ByteTextEncoder makes them: UTF-8 byte value + 1 (so 0 stays
    padding).

    ``text`` is a scalar tf.string; the result is int32 [max_length] (truncated, then zero-padded).
    ``byte_limit`` first cuts the raw string to that many bytes (LRA's retrieval pipeline
    keeps 10000).
    """
    tf = _tf()
    if byte_limit is not None:
        text = tf.strings.substr(text, 0, byte_limit)
    raw = tf.io.decode_raw(text, tf.uint8)
    return pad_or_truncate(tf.cast(raw, tf.int32) + 1, max_length)


def finish(
    ds,
    transform,
    *,
    batch_size,
    grid,
    training,
    seed,
    shuffle,
    shuffle_buffer,
    drop_remainder,
    repeat,
):
    """Shuffle raw records, tokenise (``transform``: dataset -> dataset), batch B * M * N sequences,
    prefetch.

    ``shuffle`` defaults to ``training``; ``drop_remainder`` defaults to ``training`` (a training
    step then always sees exactly B * M * N sequences); evaluation splits never drop a remainder
    unless asked. ``batch_size=None`` leaves the dataset unbatched. The shuffle order is fixed by
    ``seed``.
    """
    tf = _tf()
    if shuffle is None:
        shuffle = training
    if drop_remainder is None:
        drop_remainder = training
    if shuffle:
        ds = ds.shuffle(int(shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = transform(ds)
    if batch_size is not None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size!r}")
        ds = ds.batch(int(batch_size) * grid_size(grid), drop_remainder=bool(drop_remainder))
    return ds.prefetch(tf.data.AUTOTUNE)


def mapper(fn):
    """``transform`` that maps ``fn`` in parallel, keeping the order."""
    tf = _tf()
    return lambda ds: ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
