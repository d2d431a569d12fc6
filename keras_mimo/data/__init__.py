"""Input pipelines (tf.data) for training and evaluating keras-mimo models on every Keras backend.

Image datasets (CIFAR-10/100, SVHN, MNIST, Fashion-MNIST) live in ``keras_mimo.data.images``;
their public names are re-exported here. Long Range Arena tasks (ListOps, Text, Retrieval,
Image, Pathfinder) live in ``keras_mimo.data.lra``.
"""

from keras_mimo.data import lra
from keras_mimo.data.idx import IDXFormatError, read_idx, write_idx
from keras_mimo.data.images import (
    DATA_ENV_VAR,
    IMAGE_DATASETS,
    KNOWN_IDX_FOLDERS,
    DatasetNotFoundError,
    ImageDataLocation,
    ImageDatasetSpec,
    augment_train_batch,
    center_crop,
    default_tfds_data_dir,
    find_image_data,
    image_dataset_spec,
    image_eval_dataset,
    image_train_dataset,
    load_idx_split,
    load_image_split,
    mixup_batch,
    normalize_images,
    preprocess_eval_batch,
    random_crop_batch,
    random_flip_batch,
    sample_mixup_weight,
)

__all__ = [
    "lra",
    "DATA_ENV_VAR",
    "IMAGE_DATASETS",
    "KNOWN_IDX_FOLDERS",
    "DatasetNotFoundError",
    "IDXFormatError",
    "ImageDataLocation",
    "ImageDatasetSpec",
    "augment_train_batch",
    "center_crop",
    "default_tfds_data_dir",
    "find_image_data",
    "image_dataset_spec",
    "image_eval_dataset",
    "image_train_dataset",
    "load_idx_split",
    "load_image_split",
    "mixup_batch",
    "normalize_images",
    "preprocess_eval_batch",
    "random_crop_batch",
    "random_flip_batch",
    "read_idx",
    "sample_mixup_weight",
    "write_idx",
]
