"""``Class.from_preset`` / ``model.save_to_preset`` for keras-mimo's model classes."""


class PresetMixin:
    """Adds KerasHub's preset methods to a model class."""

    @classmethod
    def from_preset(cls, location, num_classes=None, load_weights=True, **kwargs):
        """The pretrained model of a preset of this class (or a subclass); a preset of another
        class is refused by name. Arguments as :func:`keras_mimo.from_preset`.

        Example:
            >>> from keras_mimo.models import MIMOConv
            >>> model = MIMOConv.from_preset("mimoconv-10-2.fashion-mnist-n4")  # doctest: +SKIP
        """
        from keras_mimo.presets.api import from_preset

        return from_preset(
            location,
            num_classes=num_classes,
            load_weights=load_weights,
            expected_class=cls,
            **kwargs,
        )

    def save_to_preset(self, directory, overwrite=False, **metadata):
        """Writes this model as a preset directory; see :func:`keras_mimo.save_to_preset`."""
        from keras_mimo.presets.format import save_to_preset

        return save_to_preset(self, directory, overwrite=overwrite, **metadata)
