"""Pathfinder (Long Range Arena): the release's 32 x 32 PNG folders as 1024 grey-level tokens,
2 classes.

Layout (``lra_release/pathfinder32``)::

    pathfinder32/
      curv_baseline/             # 'easy'
      curv_contour_length_9/     # 'intermediate'
      curv_contour_length_14/    # 'hard' (the task the MIMOFormer reference trains on)
        imgs/<k>/sample_<i>.png
        metadata/<k>.npy         # despite the name: text, one line per image

Each metadata line is space-separated; as in LRA's builder, field 0 is the image folder relative to
the difficulty folder (``imgs/<k>``), field 1 the file name and field 3 the label (0 or 1). Metadata
files are read in sorted order, the examples are shuffled with ``split_seed`` and cut 80 / 10 / 10 %
into train / dev / test (as the MIMOFormer reference does; LRA's builder cuts its splits the same
way). Empty image files, which the release contains, are skipped (LRA and the reference do the
same). The PNG's grey values 0..255, row by row, are the tokens, plus ``token_offset``; as for
Image, value 0 (the black background) is token 0 and the model's mask (tokens != 0) hides it, as in
the reference, unless ``token_offset=1``.
"""

import glob
import os
import random

from keras_mimo.data.lra import _common
from keras_mimo.registry.datasets import DATASETS

PATHFINDER_NUM_CLASSES = DATASETS["pathfinder"].num_classes
PATHFINDER_VOCAB_SIZE = DATASETS["pathfinder"].vocab_size  # (+ token_offset)
PATHFINDER_DIFFICULTIES = {
    "easy": "curv_baseline",
    "intermediate": "curv_contour_length_9",
    "hard": "curv_contour_length_14",
}


def _difficulty_folder(difficulty):
    if difficulty in PATHFINDER_DIFFICULTIES:
        return PATHFINDER_DIFFICULTIES[difficulty]
    if difficulty in PATHFINDER_DIFFICULTIES.values():
        return difficulty
    raise ValueError(
        f"difficulty must be one of {sorted(PATHFINDER_DIFFICULTIES)} or a folder name "
        f"{sorted(PATHFINDER_DIFFICULTIES.values())}, got {difficulty!r}"
    )


def _resolve(data_dir, resolution, folder):
    """The difficulty folder (with metadata/), from the release root, pathfinderXX, or the folder
    itself."""
    res = f"pathfinder{resolution}"
    for cand in [
        os.path.join(data_dir, res, folder),
        os.path.join(data_dir, "lra_release", res, folder),
        os.path.join(data_dir, folder),
        data_dir,
    ]:
        if os.path.isdir(os.path.join(cand, "metadata")):
            name = os.path.basename(os.path.normpath(cand))
            if cand == data_dir and name != folder and name in PATHFINDER_DIFFICULTIES.values():
                continue  # a folder of another difficulty
            return cand
    return None


def pathfinder_examples(data_dir, *, difficulty="hard", resolution=32):
    """All (image path, label) pairs of one difficulty, in metadata order (files sorted by name)."""
    folder = _difficulty_folder(difficulty)
    root = None if data_dir is None else _resolve(os.fspath(data_dir), resolution, folder)
    if root is None:
        raise _common.LRADataNotFoundError(
            f"LRA Pathfinder folder {folder}/metadata not found under data_dir={data_dir!r} "
            f"(looked for pathfinder{resolution}/{folder}, {folder} and the folder itself). "
            + _common.release_hint(f"pathfinder{resolution}")
        )
    meta_files = sorted(glob.glob(os.path.join(root, "metadata", "*.npy")))
    examples = []
    for meta in meta_files:
        with open(meta, encoding="utf-8") as f:
            for line in f.read().split("\n"):
                if not line.strip():
                    continue
                fields = line.split(" ")
                if len(fields) < 4:
                    raise ValueError(f"{meta}: metadata line with fewer than 4 fields: {line!r}")
                examples.append((os.path.join(root, fields[0], fields[1]), int(fields[3])))
    if not examples:
        raise _common.LRADataNotFoundError(
            f"LRA Pathfinder: no metadata/*.npy entries in {root}. "
            + _common.release_hint(f"pathfinder{resolution}")
        )
    return examples


def pathfinder_split(examples, split, split_seed=0):
    """Shuffle with ``split_seed`` and keep the 80 / 10 / 10 % part for 'train' / 'dev' / 'test'."""
    split = _common.normalize_split(split)
    examples = list(examples)
    random.Random(split_seed).shuffle(examples)
    n = len(examples)
    a, b = int(n * 0.8), int(n * 0.9)
    return {"train": examples[:a], "dev": examples[a:b], "test": examples[b:]}[split]


def pathfinder_dataset(
    data_dir,
    split="train",
    *,
    difficulty="hard",
    resolution=32,
    split_seed=0,
    token_offset=0,
    batch_size=32,
    grid=1,
    seed=0,
    shuffle=None,
    shuffle_buffer=2048,
    drop_remainder=None,
    repeat=False,
):
    """Pathfinder as ``(tokens int32 [B * M * N, resolution**2], label int32 [B * M * N])`` batches.

    ``data_dir``: the ``lra_release`` folder, its ``pathfinder32`` folder, or a difficulty folder.
    ``difficulty``: 'easy', 'intermediate' or 'hard' (or the folder name).
    """
    tf = _common._tf()
    split = _common.normalize_split(split)
    part = pathfinder_split(
        pathfinder_examples(data_dir, difficulty=difficulty, resolution=resolution),
        split,
        split_seed,
    )
    if not part:
        raise ValueError(f"Pathfinder split {split!r} is empty (too few examples)")
    paths = tf.constant([p for p, _ in part])
    labels = tf.constant([lab for _, lab in part], dtype=tf.int32)
    raw = tf.data.Dataset.from_tensor_slices((paths, labels))
    length = int(resolution) * int(resolution)

    def read(path, label):
        return tf.io.read_file(path), label

    def decode(png, label):
        img = tf.io.decode_png(png, channels=1)
        tokens = tf.reshape(tf.cast(img, tf.int32), [-1]) + int(token_offset)
        return tf.ensure_shape(tokens, [length]), label

    def transform(ds):
        ds = _common.mapper(read)(ds)
        ds = ds.filter(lambda png, label: tf.strings.length(png) > 0)
        return _common.mapper(decode)(ds)

    return _common.finish(
        raw,
        transform,
        batch_size=batch_size,
        grid=grid,
        training=split == "train",
        seed=seed,
        shuffle=shuffle,
        shuffle_buffer=shuffle_buffer,
        drop_remainder=drop_remainder,
        repeat=repeat,
    )
