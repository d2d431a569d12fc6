"""MIMOConv: a Wide-ResNet that runs its body once on a superposition of N images.

See docs/design.md section 2.
"""

import keras

from keras_mimo.checks import positive_int
from keras_mimo.initializers import glorot_uniform, he_fan_out
from keras_mimo.layers.activations import ACTIVATIONS
from keras_mimo.layers.binding import BINDINGS, SuperpositionBinding
from keras_mimo.layers.preprocessing import ImagePreprocessing
from keras_mimo.layers.regularizers import IsometryRegularizer
from keras_mimo.layers.residual import (
    PreActWideBlock,
    batch_norm,
    pad_one_pixel,
    stem_conv_then_batch_norm,
    strided_size,
)
from keras_mimo.layers.unbinding import UnbindingHead
from keras_mimo.presets.mixin import PresetMixin
from keras_mimo.superposition import SwitchableSuperposition, check_superposition


def _preprocessing_layer(preprocessing, input_shape):
    """``preprocessing`` (None, an ``ImagePreprocessing`` or its arguments as a dict) as a layer
    whose output fits ``input_shape``."""
    if preprocessing is None:
        return None
    if isinstance(preprocessing, dict):
        preprocessing = ImagePreprocessing(**preprocessing, name="preprocessing")
    if not isinstance(preprocessing, ImagePreprocessing):
        raise ValueError(
            f"preprocessing={preprocessing!r} must be None, a keras_mimo.layers.ImagePreprocessing "
            "or a dict of its arguments (raw_shape, center_crop, mean, std, scale)."
        )
    if preprocessing.output_image_shape != input_shape:
        raise ValueError(
            f"preprocessing turns {preprocessing.raw_shape} images into "
            f"{preprocessing.output_image_shape}, but the network takes input_shape={input_shape}."
        )
    return preprocessing


def preprocessing_arguments(layer):
    """The constructor arguments of an ``ImagePreprocessing`` layer (None stays None)."""
    if layer is None:
        return None
    config = layer.get_config()
    return {key: config[key] for key in ("raw_shape", "center_crop", "mean", "std", "scale")}


def _check_image_shape(input_shape):
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        raise ValueError(
            f"input_shape={input_shape!r} must be (height, width, channels) with positive "
            "integers, e.g. (32, 32, 3) for CIFAR or (20, 20, 1) for centre-cropped MNIST."
        )
    return shape


@keras.saving.register_keras_serializable(package="keras_mimo")
class MIMOConv(PresetMixin, SwitchableSuperposition, keras.Model):
    """Wide-ResNet in superposition: stem per image, bind N, body once, unbind N, classify.

    Images ``(batch, height, width, channels)`` -> logits ``(batch, num_classes)``, one row per
    image, in order, for any batch size: a batch that is not a multiple of N is padded to whole
    groups (the last group with its own images) and the padding's rows are cut off. Logits are
    float32 also under mixed precision. ``model.superposition`` (N, any divisor of
    ``capacity``) can be changed at any time, compiled or not; the same weights then trade
    accuracy for throughput.

    Args:
        depth: WRN depth; ``(depth - 4) / 6`` blocks per stage (10, 16, 22, 28, ...).
        width: WRN widening factor: stage widths 16w, 32w, 64w.
        initial_width: stem width factor: the stem and the superposition have
            16 * initial_width channels.
        num_classes: classifier outputs.
        capacity: superposition slots N_cap built into the model.
        binding: "hrr" (circular convolution with trainable keys), "mbat" (per-slot matrices)
            or "none".
        activation: body activation, "prelu" (MIMOConv), "relu" (WideResNet) or "srelu"
            (WideISONet).
        input_shape: (height, width, channels) of one image.
        superposition: N at construction (default: the capacity).
        binding_regularization: weight of the HRR key regulariser added to the loss (0 disables).
        isometry_regularization: weight of the isometry regulariser on body convolutions
            (0 disables).
        trainable_keys: whether binding keys are trained.
        activation_init: initial PReLU slope / SReLU offset (None: 0.5 / -1).
        stem_stride: stride of the stem convolution (1 as in the paper; 2 halves the resolution
            of the stem output, the superposition and the whole body: a quarter of their
            multiply-adds). A strided stem pads one pixel on every side, as the body's strided
            convolutions do.
        seed: seed of every initialiser (keys included), for repeatable models.
        preprocessing: None (the model takes network-ready float images of ``input_shape``), or
            an ``ImagePreprocessing`` (or a dict of its arguments): the model then takes raw
            dataset images (e.g. uint8 ``(batch, 28, 28, 1)``), crops and normalises them first.
            Pretrained presets carry theirs.

    Example:
        >>> import numpy as np
        >>> from keras_mimo.models import MIMOConv
        >>> model = MIMOConv(depth=10, width=1, initial_width=1, num_classes=10,
        ...                  capacity=4, input_shape=(8, 8, 3), seed=0)
        >>> images = np.zeros((63, 8, 8, 3), "float32")
        >>> model.predict(images, verbose=0).shape  # 63 rows at N = 4
        (63, 10)
        >>> model.superposition = 2  # more accurate, half the throughput
        >>> model.predict(images, verbose=0).shape
        (63, 10)
    """

    def __init__(
        self,
        depth=28,
        width=10,
        initial_width=4,
        num_classes=10,
        capacity=4,
        binding="hrr",
        activation="prelu",
        input_shape=(32, 32, 3),
        superposition=None,
        binding_regularization=0.1,
        isometry_regularization=1e-4,
        trainable_keys=True,
        activation_init=None,
        stem_stride=1,
        seed=None,
        preprocessing=None,
        **kwargs,
    ):
        depth = positive_int("depth", depth)
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(
                f"depth={depth} is not a Wide-ResNet depth: it must be 6k + 4 with k >= 1 "
                "(10, 16, 22, 28, ...)."
            )
        width = positive_int("width", width)
        initial_width = positive_int("initial_width", initial_width)
        num_classes = positive_int("num_classes", num_classes)
        capacity = positive_int("capacity", capacity)
        if (
            isinstance(stem_stride, bool)
            or not isinstance(stem_stride, int)
            or stem_stride not in (1, 2)
        ):
            raise ValueError(
                f"stem_stride={stem_stride!r} must be 1 (full resolution, the paper's) or 2 "
                "(half resolution)."
            )
        if binding not in BINDINGS:
            raise ValueError(f"binding={binding!r} is unknown: use one of {BINDINGS}.")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is unknown: use one of {ACTIVATIONS}.")
        input_shape = _check_image_shape(input_shape)
        preprocessing = _preprocessing_layer(preprocessing, input_shape)
        superposition = check_superposition(
            capacity if superposition is None else superposition, capacity
        )
        for name, value in (
            ("binding_regularization", binding_regularization),
            ("isometry_regularization", isometry_regularization),
        ):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name}={value!r} must be a number >= 0 (0 switches it off).")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed={seed!r} must be an integer or None.")
        super().__init__(**kwargs)

        self.depth = depth
        self.width = width
        self.initial_width = initial_width
        self.num_classes = num_classes
        self.capacity = capacity
        self.binding = binding
        self.activation = activation
        self.image_shape = input_shape
        self._superposition = superposition
        self._isometry_scale = 1.0
        self.binding_regularization = float(binding_regularization)
        self.isometry_regularization = float(isometry_regularization)
        self.trainable_keys = bool(trainable_keys)
        self.activation_init = activation_init
        self.stem_stride = stem_stride
        self.seed = seed
        self.preprocessing = preprocessing

        with self._sublayers_in_own_dtype_policy():
            seeds = iter(range(10**6)) if seed is None else iter(range(seed, seed + 10**6, 8))
            next_seed = (lambda: None) if seed is None else (lambda: next(seeds))

            stem_channels = 16 * initial_width
            self.stem_conv = keras.layers.Conv2D(
                stem_channels,
                3,
                strides=stem_stride,
                padding="same" if stem_stride == 1 else "valid",
                use_bias=False,
                kernel_initializer=he_fan_out(next_seed()),
                name="stem_conv",
            )
            self.stem_bn = batch_norm("stem_bn")
            self.stem_act = keras.layers.ReLU(name="stem_act")
            self.bind = SuperpositionBinding(
                capacity,
                binding,
                regularization=self.binding_regularization,
                trainable_keys=self.trainable_keys,
                seed=next_seed(),
                name="binding",
            )
            blocks_per_stage = (depth - 4) // 6
            self.blocks = []
            for stage, (filters, stride) in enumerate(
                ((16 * width, 1), (32 * width, 2), (64 * width, 2)), start=1
            ):
                for index in range(blocks_per_stage):
                    self.blocks.append(
                        PreActWideBlock(
                            filters,
                            stride if index == 0 else 1,
                            activation=activation,
                            activation_init=activation_init,
                            isometry_regularization=self.isometry_regularization,
                            seed=next_seed(),
                            name=f"stage{stage}_block{index + 1}",
                        )
                    )
            self.pool = keras.layers.GlobalAveragePooling2D(name="pool")
            self.unbind = UnbindingHead(
                capacity,
                identity=(binding == "none" and capacity == 1),
                kernel_initializer=he_fan_out(next_seed()),
                name="unbinding",
            )
            # Logits in the variable dtype (float32 under mixed precision), so losses stay stable.
            self.classifier = keras.layers.Dense(
                num_classes,
                kernel_initializer=glorot_uniform(next_seed()),
                dtype=self.dtype_policy.variable_dtype,
                name="classifier",
            )
            self.build((None,) + self.raw_image_shape)

    # ---------------------------------------------------------------- operating point
    @property
    def superposition(self):
        """How many inputs share one superposition (N); any divisor of ``capacity``."""
        return self._superposition

    @superposition.setter
    def superposition(self, value):
        value = check_superposition(value, self.capacity)
        self.switch_operating_point(self._operating_point, (value, self._isometry_scale))
        self._superposition = value

    @property
    def isometry_scale(self):
        """Multiplies the isometry penalty in the loss (default 1); 0 leaves it out of the step.

        For lazy regularisation (``keras_mimo.training.callbacks.LazyIsometry``): the penalty costs
        the same whatever the batch, so on a small body it can be a third of a step. Applied on
        every k-th update at scale k, it adds the same gradient on average for a k-th of the cost.
        Like ``superposition``, a switch takes effect at the next step, compiled steps included.
        """
        return self._isometry_scale

    @isometry_scale.setter
    def isometry_scale(self, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(
                f"isometry_scale={value!r} must be a number >= 0 (1: the penalty as configured, "
                "0: left out)."
            )
        value = float(value)
        if (
            value == self._isometry_scale
        ):  # LazyIsometry sets it every batch: no layer walk when unchanged
            return
        self.switch_operating_point(self._operating_point, (self._superposition, value))
        for layer in self._flatten_layers(include_self=False):
            if isinstance(getattr(layer, "kernel_regularizer", None), IsometryRegularizer):
                layer.kernel_regularizer.scale = value
        self._isometry_scale = value

    @property
    def _operating_point(self):
        """What a traced step bakes in: N and the isometry scale."""
        return (self._superposition, self._isometry_scale)

    # ---------------------------------------------------------------- graph
    @property
    def raw_image_shape(self):
        """Shape of one input image: the raw shape with preprocessing, else ``input_shape``."""
        if self.preprocessing is None:
            return self.image_shape
        return self.preprocessing.raw_shape

    @property
    def feature_channels(self):
        """Width of the pooled body output and of each unbound slot vector (64 * width)."""
        return 64 * self.width

    def build(self, input_shape):
        if self.built:
            return
        input_shape = tuple(input_shape)
        if tuple(input_shape[1:]) != self.raw_image_shape:
            raise ValueError(
                f"{self.name} was built for images of shape {self.raw_image_shape}, "
                f"got {input_shape[1:]}."
            )
        if self.preprocessing is not None:
            self.preprocessing.build(input_shape)
            input_shape = (input_shape[0],) + self.image_shape
        self.stem_conv.build(input_shape)
        shape = (
            (None,)
            + tuple(strided_size(size, self.stem_stride) for size in input_shape[1:3])
            + (16 * self.initial_width,)
        )
        self.stem_bn.build(shape)
        self.bind.build(shape)
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)
        self.unbind.build((None, shape[-1]))
        self.classifier.build((None, shape[-1]))
        self.built = True

    def call(self, images, training=None):
        if self.preprocessing is not None:
            self.preprocessing.check_images(images, owner=self.name)
            images = self.preprocessing(images)
        self._check_images(images)
        n = self._superposition
        original = images
        if self.stem_stride > 1:
            images = pad_one_pixel(images)
        x = self.stem_act(stem_conv_then_batch_norm(images, self.stem_conv, self.stem_bn, training))
        x = self.bind(x, superposition=n)  # pads the batch to whole groups of N
        for block in self.blocks:
            x = block(x, training=training)
        # one row per image, in order: the padding's rows are cut off
        x = self.unbind(self.pool(x), superposition=n, original_inputs=original)
        return self.classifier(x)

    def _check_images(self, images):
        shape = tuple(images.shape[1:])
        if len(images.shape) != 4 or shape != self.image_shape:
            raise ValueError(
                f"{self.name} expects a batch of images of shape (batch,) + {self.image_shape}, "
                f"got {tuple(images.shape)}. Resize or crop the images, or build the model with "
                f"input_shape={shape}."
            )

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    # ---------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update(
            depth=self.depth,
            width=self.width,
            initial_width=self.initial_width,
            num_classes=self.num_classes,
            capacity=self.capacity,
            binding=self.binding,
            activation=self.activation,
            input_shape=self.image_shape,
            superposition=self._superposition,
            binding_regularization=self.binding_regularization,
            isometry_regularization=self.isometry_regularization,
            trainable_keys=self.trainable_keys,
            activation_init=self.activation_init,
            stem_stride=self.stem_stride,
            seed=self.seed,
            preprocessing=preprocessing_arguments(self.preprocessing),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "input_shape" in config:
            config["input_shape"] = tuple(config["input_shape"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="keras_mimo")
class WideResNet(MIMOConv):
    """The plain Wide-ResNet baseline (Zagoruyko & Komodakis 2016).

    A MIMOConv with capacity 1, no binding and ReLU: images in, one row of float32 logits per
    image out; no superposition to switch.

    Args:
        depth: 6k + 4 (28 for WRN-28-10).
        width: widening factor (10 for WRN-28-10).
        num_classes: classifier outputs.
        input_shape: (height, width, channels) of one image.
        initial_width: stem width factor (1: the classic 16-channel stem).
        stem_stride: stride of the stem convolution (1: the classic WRN; 2: the body at half
            resolution).
        seed: seed of every initialiser.
        preprocessing: raw-image preprocessing, as for :class:`MIMOConv`.

    Example:
        >>> from keras_mimo.models import WideResNet
        >>> model = WideResNet(depth=16, width=4, num_classes=10, input_shape=(32, 32, 3))
        >>> model.capacity, model.superposition
        (1, 1)
    """

    def __init__(
        self,
        depth=28,
        width=10,
        num_classes=10,
        input_shape=(32, 32, 3),
        initial_width=1,
        stem_stride=1,
        seed=None,
        preprocessing=None,
        **kwargs,
    ):
        for fixed in (
            "capacity",
            "binding",
            "activation",
            "superposition",
            "binding_regularization",
            "isometry_regularization",
            "trainable_keys",
            "activation_init",
        ):
            if fixed in kwargs:
                raise ValueError(
                    f"WideResNet does not take {fixed}=...: use keras_mimo.models.MIMOConv for "
                    "that."
                )
        super().__init__(
            depth=depth,
            width=width,
            initial_width=initial_width,
            num_classes=num_classes,
            capacity=1,
            binding="none",
            activation="relu",
            input_shape=input_shape,
            binding_regularization=0.0,
            isometry_regularization=0.0,
            stem_stride=stem_stride,
            seed=seed,
            preprocessing=preprocessing,
            **kwargs,
        )

    def get_config(self):
        config = keras.Model.get_config(self)
        config.update(
            depth=self.depth,
            width=self.width,
            num_classes=self.num_classes,
            input_shape=self.image_shape,
            initial_width=self.initial_width,
            stem_stride=self.stem_stride,
            seed=self.seed,
            preprocessing=preprocessing_arguments(self.preprocessing),
        )
        return config
