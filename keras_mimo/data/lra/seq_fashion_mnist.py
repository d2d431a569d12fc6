"""Sequential Fashion-MNIST: the 28 x 28 grey images as 784 pixel tokens, in the form of LRA Image.

keras-mimo's own task, in neither the Long Range Arena nor the MIMOFormer reference; it is LRA's
Image task (:mod:`keras_mimo.data.lra.image`) with Fashion-MNIST in place of grey CIFAR-10, and it
is trained with Image's model sizes and settings (``keras_mimo.registry.lra``). The images are grey
already, so each token is the raw uint8 pixel value, row by row (``tokens[28 * r + c] =
image[r, c]``), plus ``token_offset``. 10 classes, Fashion-MNIST's (T-shirt/top ... Ankle boot).

Splits as the Image task makes them from CIFAR-10: 'train' = train[:90%] (the first 54000 of the
60000 training images), 'dev' = train[90%:] (the last 6000), 'test' = test (10000). The dev images
are held out of training, so dev accuracy selects the checkpoint without looking at the test set.

Grey value 0 is token 0, which the model's mask (tokens != 0) treats like padding, as for LRA's
Image (half of the Fashion-MNIST pixels are black: 50.2% of the training images'); with
``token_offset=1`` every pixel is shifted by one (vocabulary 257, so a model needs
``vocab_size=257``) and no pixel is masked.

The data are the four IDX files the image recipes read (:func:`keras_mimo.data.load_image_split`,
``fashion-mnist``): ``data_dir`` is a folder holding them (or a tensorflow-datasets data_dir with
``fashion_mnist`` prepared); None finds them as the image recipes do ($KERAS_MIMO_DATA, the Debian
package dataset-fashion-mnist in /usr/share/datasets/fashion-mnist, Keras' download cache, tfds).
"""

import numpy as np

from keras_mimo.checks import positive_int
from keras_mimo.data.lra import _common
from keras_mimo.registry.datasets import DATASETS

SEQ_FASHION_MNIST_NUM_CLASSES = DATASETS["seq-fashion-mnist"].num_classes
SEQ_FASHION_MNIST_VOCAB_SIZE = DATASETS["seq-fashion-mnist"].vocab_size  # (+ token_offset)
SEQ_FASHION_MNIST_LENGTH = DATASETS["seq-fashion-mnist"].default_length  # 28 * 28
_IMAGE_SPLIT = {"train": "train[:90%]", "dev": "train[90%:]", "test": "test"}


def fashion_mnist_tokens(images, token_offset=0):
    """uint8 images ``[..., 28, 28]`` or ``[..., 28, 28, 1]`` (numpy) -> int32 ``[..., 784]``
    tokens: the pixel values row by row, + ``token_offset``; what the loader yields."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"Fashion-MNIST images are uint8, got {images.dtype}.")
    if images.shape[-1:] == (1,):
        images = images[..., 0]
    if images.shape[-2:] != (28, 28):
        raise ValueError(f"Fashion-MNIST images are 28 x 28, got shape {images.shape}.")
    flat = images.reshape(images.shape[:-2] + (SEQ_FASHION_MNIST_LENGTH,))
    return flat.astype(np.int32) + int(token_offset)


def seq_fashion_mnist_dataset(
    split="train",
    *,
    data_dir=None,
    batch_size=32,
    grid=1,
    token_offset=0,
    max_examples=None,
    seed=0,
    shuffle=None,
    shuffle_buffer=256,
    drop_remainder=None,
    repeat=False,
):
    """Fashion-MNIST as ``(tokens int32 [B * M * N, 784], label int32 [B * M * N])`` batches.

    ``data_dir``: a folder of the four Fashion-MNIST IDX files (None: found as the image recipes
    find them). Without the data a :class:`LRADataNotFoundError` lists where it looked and how to
    get them (``apt-get install dataset-fashion-mnist``, tfds, any IDX folder).
    ``max_examples`` keeps only the first that many images of the split (``--quick`` reads 64).
    """
    from keras_mimo.data.images import DatasetNotFoundError, load_image_split

    tf = _common._tf()
    split = _common.normalize_split(split)
    try:
        raw = load_image_split("fashion-mnist", _IMAGE_SPLIT[split], data_dir=data_dir)
    except DatasetNotFoundError as error:
        raise _common.LRADataNotFoundError(
            f"seq-fashion-mnist reads the Fashion-MNIST images. {error}"
        ) from error
    if max_examples is not None:
        raw = raw.take(positive_int("max_examples", max_examples))

    def encode(image, label):
        tokens = tf.reshape(tf.cast(image, tf.int32), [SEQ_FASHION_MNIST_LENGTH])
        return tokens + int(token_offset), tf.cast(label, tf.int32)

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
