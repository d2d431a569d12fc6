"""Image (Long Range Arena): CIFAR-10 as 1024 grey-level tokens, via tensorflow-datasets.

As LRA's ``image/input_pipeline.py`` (``get_cifar10_datasets``, ``normalize=False``): the RGB image
goes through ``tf.image.rgb_to_grayscale`` (weights 0.2989 R + 0.5870 G + 0.1140 B, computed in
float and converted back to uint8 by ``tf.image.convert_image_dtype``, i.e.
``floor(grey * 255.5 / 255)``), and the 32 x 32 grey values 0..255, row by row, are the tokens.
Splits as LRA: 'train' = train[:90%], 'dev' = train[90%:], 'test' = test. 10 classes.

Grey value 0 is token 0, which the model's mask (tokens != 0) treats like padding; that is what LRA
and the MIMOFormer reference feed their models. ``token_offset=1`` shifts every pixel by one
(vocabulary 257) so that no pixel is masked.
"""

from keras_mimo.data.lra import _common, _tfds
from keras_mimo.registry.datasets import DATASETS

IMAGE_NUM_CLASSES = DATASETS["image"].num_classes
IMAGE_VOCAB_SIZE = DATASETS["image"].vocab_size  # (+ token_offset)
_TFDS_SPLIT = {"train": "train[:90%]", "dev": "train[90%:]", "test": "test"}


def cifar10_grey_tokens(image, token_offset=0):
    """uint8 [32, 32, 3] -> int32 [1024] grey-level tokens (LRA's conversion) + ``token_offset``."""
    tf = _common._tf()
    grey = tf.image.rgb_to_grayscale(tf.convert_to_tensor(image, tf.uint8))
    return tf.reshape(tf.cast(grey, tf.int32), [-1]) + int(token_offset)


def cifar10_grey_dataset(
    split="train",
    *,
    data_dir=None,
    download=False,
    batch_size=32,
    grid=1,
    token_offset=0,
    seed=0,
    shuffle=None,
    shuffle_buffer=256,
    drop_remainder=None,
    repeat=False,
):
    """CIFAR-10 as ``(tokens int32 [B * M * N, 1024], label int32 [B * M * N])`` batches.

    ``data_dir`` is a tensorflow-datasets folder in which ``cifar10`` is prepared (None: tfds'
    default folder). Without it a :class:`LRADataNotFoundError` says how to get it, unless
    ``download=True``.
    """
    tf = _common._tf()
    split = _common.normalize_split(split)
    builder = _tfds.prepared_builder("cifar10", data_dir, download, "LRA Image (CIFAR-10)")
    raw = builder.as_dataset(split=_TFDS_SPLIT[split], shuffle_files=False)

    def encode(example):
        tokens = tf.ensure_shape(cifar10_grey_tokens(example["image"], token_offset), [1024])
        return tokens, tf.cast(example["label"], tf.int32)

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
