"""Raw dataset images in, network images out: the preprocessing a pretrained preset carries.

``ImagePreprocessing`` takes images as a dataset ships them (uint8, or floats on the 0-255 scale),
crops their centre and normalises each channel, with the same arithmetic as the training
pipeline (``keras_mimo.data.preprocess_eval_batch``), in ``keras.ops`` on every backend.
"""

import keras
from keras import ops


def _check_shape(name, shape, length):
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else None
    if (
        shape is None
        or len(shape) != length
        or not all(isinstance(d, int) and d > 0 for d in shape)
    ):
        raise ValueError(f"{name}={shape!r} must be {length} positive integers.")
    return shape


def center_crop_offsets(size, crop):
    """First row (or column) of the central ``crop`` pixels of ``size`` (torchvision's rounding)."""
    return int(round((size - crop) / 2.0))


@keras.saving.register_keras_serializable(package="keras_mimo")
class ImagePreprocessing(keras.layers.Layer):
    """Raw images ``(batch,) + raw_shape`` -> float32 ``(x * scale - mean) / std`` of their centre.

    Args:
        raw_shape: (height, width, channels) of a raw image, e.g. (28, 28, 1) for MNIST.
        center_crop: side of the central square kept (None: the whole image).
        mean, std: per-channel normalisation, in units of ``pixel * scale``.
        scale: multiplies the raw pixels first (1/255: uint8 images to [0, 1]).

    Images of another shape raise a ValueError naming the expected shape; any numeric dtype is
    accepted (cast to float32).

    Example:
        >>> import numpy as np
        >>> layer = ImagePreprocessing((28, 28, 1), center_crop=20, mean=(0.286,), std=(0.353,))
        >>> layer(np.zeros((2, 28, 28, 1), "uint8")).shape
        (2, 20, 20, 1)
    """

    def __init__(
        self, raw_shape, center_crop=None, mean=(0.0,), std=(1.0,), scale=1 / 255, **kwargs
    ):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.raw_shape = _check_shape("raw_shape", raw_shape, 3)
        height, width, channels = self.raw_shape
        if center_crop is not None:
            if isinstance(center_crop, bool) or not isinstance(center_crop, int) or center_crop < 1:
                raise ValueError(f"center_crop={center_crop!r} must be a positive integer or None.")
            if center_crop > min(height, width):
                raise ValueError(
                    f"center_crop={center_crop} does not fit in raw images of {height}x{width}."
                )
        self.center_crop = center_crop
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) != channels:
                raise ValueError(
                    f"{name} has {len(values)} values, but raw images have {channels} channels."
                )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std={self.std} must be positive.")
        self.scale = float(scale)

    @property
    def output_image_shape(self):
        """Shape of one preprocessed image: what the network is built for."""
        height, width, channels = self.raw_shape
        if self.center_crop is None:
            return self.raw_shape
        return (self.center_crop, self.center_crop, channels)

    def check_images(self, images, owner="the preprocessing"):
        shape = tuple(images.shape)
        if len(shape) != 4 or shape[1:] != self.raw_shape:
            raise ValueError(
                f"{owner} expects raw images of shape (batch,) + {self.raw_shape} (as the dataset "
                f"ships them), got {shape}. For images that are already cropped and normalised use "
                "the bare network (from_preset(..., include_preprocessing=False))."
            )

    def call(self, images):
        self.check_images(images)
        x = ops.cast(images, "float32") * self.scale
        if self.center_crop is not None:
            height, width, _ = self.raw_shape
            top = center_crop_offsets(height, self.center_crop)
            left = center_crop_offsets(width, self.center_crop)
            x = x[:, top : top + self.center_crop, left : left + self.center_crop, :]
        mean = ops.convert_to_tensor(self.mean, "float32")
        std = ops.convert_to_tensor(self.std, "float32")
        return (x - mean) / std

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self.output_image_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            raw_shape=self.raw_shape,
            center_crop=self.center_crop,
            mean=self.mean,
            std=self.std,
            scale=self.scale,
        )
        return config
