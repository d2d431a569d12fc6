"""Every named architecture of both families in one table: ``keras_mimo.models.create_model(name)``.

Names follow ``{family}-{size}``:

* ``wrn-{depth}-{width}``: the WideResNet baseline (ReLU, 16-channel stem, no superposition);
* ``mimoconv-{depth}-{width}``: MIMOConv on that Wide-ResNet body (PReLU, isometry regulariser,
  HRR binding, 64-channel stem), capacity 4 unless ``capacity=`` says otherwise;
* ``performer-{task}[-{variant}]``, ``mimoformer-att-{task}[-{variant}]``,
  ``mimoformer-attmlp-{task}[-{variant}]``: the reference's Long Range Arena models, which are
  sized per task (variant ``deep``, or ``small`` for Retrieval; none = the wide model).

An architecture fixes the network, not the data: image models take their ``input_shape`` and
``num_classes`` from the dataset they are trained on (a recipe does that), so
``create_model("mimoconv-10-2", input_shape=(20, 20, 1))`` is the MNIST-sized model. Training
regimes (N = 2, dynamic) are recipes (:mod:`keras_mimo.training.recipes`), and trained weights are
presets named after the recipe that made them.

The table is keras-free; the classes are imported when a model is built.
"""

import dataclasses
import importlib

from keras_mimo.registry.lra import lra_architectures
from keras_mimo.registry.names import lookup

_CLASS_MODULES = {
    "WideResNet": "keras_mimo.models.mimoconv",
    "MIMOConv": "keras_mimo.models.mimoconv",
    "MIMOFormer": "keras_mimo.models.mimoformer",
    "Performer": "keras_mimo.models.mimoformer",
}
FAMILY_OF_CLASS = {
    "WideResNet": "mimoconv",
    "MIMOConv": "mimoconv",
    "MIMOFormer": "mimoformer",
    "Performer": "mimoformer",
}


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One named architecture: its model class (by name), constructor arguments and description."""

    name: str
    class_name: str
    arguments: dict
    description: str
    facts: dict = dataclasses.field(default_factory=dict)

    @property
    def family(self):
        """``mimoconv`` (image models) or ``mimoformer`` (Long Range Arena models)."""
        return FAMILY_OF_CLASS[self.class_name]

    def model_class(self):
        return getattr(importlib.import_module(_CLASS_MODULES[self.class_name]), self.class_name)

    def build(self, **overrides):
        return self.model_class()(**{**self.arguments, **overrides})


ARCHITECTURES = {}


def register_architecture(name, class_name, description, facts=None, **arguments):
    """Adds one named architecture to the table (one line per architecture)."""
    if name in ARCHITECTURES:
        raise ValueError(f"architecture {name!r} is registered twice")
    if class_name not in _CLASS_MODULES:
        raise ValueError(
            f"{class_name!r} is not a keras-mimo model class: {sorted(_CLASS_MODULES)}"
        )
    ARCHITECTURES[name] = Architecture(name, class_name, arguments, description, dict(facts or {}))


_MIMOCONV = dict(initial_width=4, capacity=4, binding="hrr", activation="prelu")

register_architecture(
    "wrn-28-10", "WideResNet", "WideResNet-28-10, the paper's baseline.", depth=28, width=10
)
register_architecture(
    "wrn-10-2", "WideResNet", "WideResNet-10-2 (one block per stage).", depth=10, width=2
)
register_architecture(
    "mimoconv-28-10",
    "MIMOConv",
    "MIMOConv on the WRN-28-10 body (PReLU, isometry regulariser, HRR keys), capacity 4.",
    depth=28,
    width=10,
    **_MIMOCONV,
)
register_architecture(
    "mimoconv-10-2",
    "MIMOConv",
    "MIMOConv on a WRN-10-2 body ('MIMONet-10', one block per stage), capacity 4: the paper's "
    "small MNIST model (its widths are keras-mimo's choice).",
    depth=10,
    width=2,
    **_MIMOCONV,
)
for _name, (_class, _arguments, _description, _facts) in lra_architectures().items():
    register_architecture(_name, _class, _description, facts=_facts, **_arguments)


def get_architecture(name):
    """The :class:`Architecture` called ``name``; an ``UnknownNameError`` with the closest names
    otherwise.

    Example:

    >>> get_architecture("mimoconv-28-10").arguments["capacity"]
    4
    """
    if isinstance(name, Architecture):
        return name
    return lookup(ARCHITECTURES, name, "architecture", listing="keras_mimo.models.list_models()")


def list_architectures(family=None):
    """The architecture names, sorted, optionally of one family (``mimoconv`` or ``mimoformer``)."""
    return sorted(n for n, a in ARCHITECTURES.items() if family in (None, a.family))
