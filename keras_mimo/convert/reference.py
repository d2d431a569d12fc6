"""Loads weights of the reference PyTorch MIMOConv into our MIMOConv / WideResNet models.

The reference is IBM/multiple-input-multiple-output-nets (folder MIMOConv); the MIMOFormer
converter is :mod:`keras_mimo.convert.mimoformer`, and :func:`from_reference` hands a
MIMOFormer to it.

The reference's SuperWideResnet / SuperWideISONet store PyTorch tensors in (out, in, kh, kw)
layout; we store Keras (kh, kw, in, out). Two bindings need more than a transpose:

* HRR: the reference binds with a grouped Conv1d of kernel C and circular padding C/2 and
  then drops the first output, i.e. ``y[j] = sum_k w[k] x[(j + 1 + k - C/2) mod C]``, a circular
  cross-correlation. As a circular convolution ``y = h (*) x`` that is the key
  ``h[m] = w[(C/2 - 1 - m) mod C]``: an index reversal plus a shift.
* MBAT: a grouped 1x1 Conv2d whose output channel ``s*C + j`` reads slot ``s``'s input channel
  ``i`` with weight ``W[s*C + j, i]``; our slot matrix (applied as ``x @ M``) is ``M[s, i, j]``.
"""

import os

import numpy as np

from keras_mimo.convert._plan import load_by_plan

_BN_PARTS = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}
_IGNORED_SUFFIXES = ("num_batches_tracked",)


def reference_key(reference_weight, channels):
    """HRR key of ours from the reference's Conv1d kernel row ``w`` (length C).

    ``h[m] = w[(C/2 - 1 - m) mod C]``: an index reversal plus a shift.

    Example:
        >>> reference_key(np.arange(8.0), 8).tolist()
        [3.0, 2.0, 1.0, 0.0, 7.0, 6.0, 5.0, 4.0]
    """
    w = np.asarray(reference_weight).reshape(-1)
    if w.shape[0] != channels:
        raise ValueError(f"HRR kernel has {w.shape[0]} taps, expected {channels}.")
    return w[(channels // 2 - 1 - np.arange(channels)) % channels]


def _load_state_dict(state_dict):
    if isinstance(state_dict, (str, os.PathLike)):
        try:
            import torch
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise ImportError(
                "Reading a .pt checkpoint needs PyTorch: pip install torch (or pass a dict of "
                "numpy arrays)."
            ) from error
        loaded = torch.load(os.fspath(state_dict), map_location="cpu", weights_only=True)
        if (
            isinstance(loaded, dict) and "model_state_dict" in loaded
        ):  # the reference's training checkpoints
            loaded = loaded["model_state_dict"]
        state_dict = loaded
    if not hasattr(state_dict, "items"):
        raise TypeError(
            "state_dict must be a mapping of names to arrays or a path to a .pt file, "
            f"got {type(state_dict).__name__}."
        )
    arrays = {}
    for name, value in state_dict.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        arrays[str(name)] = np.asarray(value)
    return arrays


def _weight_plan(model):
    """(reference name, keras variable, converter from the reference array) for every weight."""
    plan = []

    def conv(prefix, layer):
        plan.append((f"{prefix}.weight", layer.kernel, lambda a: np.transpose(a, (2, 3, 1, 0))))

    def batch_norm(prefix, layer):
        for torch_part, keras_part in _BN_PARTS.items():
            plan.append((f"{prefix}.{torch_part}", getattr(layer, keras_part), lambda a: a))

    def activation(prefix, layer):
        if model.activation == "prelu":
            plan.append((f"{prefix}.weight", layer.alpha, lambda a: a.reshape(1, 1, -1)))
        elif model.activation == "srelu":
            plan.append((f"{prefix}.srelu_bias", layer.offset, lambda a: a.reshape(-1)))

    conv("conv1", model.stem_conv)
    batch_norm("bn1", model.stem_bn)

    channels = 16 * model.initial_width
    capacity = model.capacity
    if model.binding == "hrr":
        plan.append(
            (
                "channelConv.weight",
                model.bind.keys,
                lambda a: np.stack([reference_key(a[s], channels) for s in range(capacity)]),
            )
        )
    elif model.binding == "mbat":
        plan.append(
            (
                "channelLinear.weight",
                model.bind.keys,
                lambda a: np.transpose(a.reshape(capacity, channels, channels), (0, 2, 1)),
            )
        )

    blocks_per_stage = (model.depth - 4) // 6
    for index, block in enumerate(model.blocks):
        prefix = f"layer{index // blocks_per_stage + 1}.{index % blocks_per_stage}"
        batch_norm(f"{prefix}.bn1", block.bn1)
        activation(f"{prefix}.relu1", block.act1)
        conv(f"{prefix}.conv1", block.conv1)
        batch_norm(f"{prefix}.bn2", block.bn2)
        activation(f"{prefix}.relu2", block.act2)
        conv(f"{prefix}.conv2", block.conv2)
        if block.has_projection:
            conv(f"{prefix}.downsample.0", block.shortcut_conv)
            batch_norm(f"{prefix}.downsample.1", block.shortcut_bn)

    if model.unbind.expand is not None:
        plan.append(
            (
                "unbind.0.weight",
                model.unbind.expand.kernel,
                lambda a: a.reshape(a.shape[0], a.shape[1]).T,
            )
        )
        plan.append(("unbind.0.bias", model.unbind.expand.bias, lambda a: a))
    plan.append(("fc.weight", model.classifier.kernel, lambda a: a.T))
    plan.append(("fc.bias", model.classifier.bias, lambda a: a))
    return plan


def _is_unused_reference_entry(name, value):
    """Entries the reference stores that carry no information for inference with skip_init off."""
    if name.endswith(_IGNORED_SUFFIXES):
        return True
    # BasicBlock.alpha is the skipInit gate; it is only read when skip_init=True, and stays 0
    # otherwise.
    return name.endswith(".alpha") and np.ndim(value) == 0


def _skip_init_gates(arrays):
    """Names of non-zero skipInit gates: such a checkpoint was trained with skip_init=True."""
    return sorted(
        n for n, v in arrays.items() if n.endswith(".alpha") and np.ndim(v) == 0 and float(v) != 0.0
    )


def from_reference(state_dict, model):
    """Loads a reference checkpoint into ``model``: a MIMOConv / WideResNet, or a MIMOFormer.

    For a MIMOConv or WideResNet the checkpoint is that of a reference SuperWideResnet /
    SuperWideISONet; a MIMOFormer or Performer is handed to
    :func:`keras_mimo.convert.from_mimoformer_reference`, whose contract is the same. Every
    weight of ``model`` is replaced (BatchNorm statistics and binding keys included), or, if
    anything does not fit, none is. The converted model's logits agree with the reference's
    (eval mode) up to float32 rounding at every N.

    Args:
        state_dict: mapping of parameter names to arrays (numpy or torch), or a path to a
            ``.pt`` file holding a state_dict or a reference training checkpoint
            ``{"model_state_dict": ...}`` (torch needed then).
        model: a built :class:`keras_mimo.models.MIMOConv` (or WideResNet, MIMOFormer,
            Performer) whose configuration matches the checkpoint.

    Returns:
        ``model``, with every weight replaced.

    Raises:
        ValueError: listing reference names the model has no place for, model weights the
            state_dict lacks, and shape mismatches, all at once, before any weight is changed;
            also for a checkpoint trained with skip_init=True, whose residual gates our
            blocks do not have.

    Example:
        >>> import torch  # doctest: +SKIP
        >>> from keras_mimo.convert import from_reference
        >>> from keras_mimo.models import MIMOConv
        >>> model = MIMOConv(depth=16, width=4, initial_width=4, capacity=4, binding="hrr")
        >>> from_reference("checkpoint.pt", model)  # doctest: +SKIP
        >>> model.superposition = 2  # the converted weights serve every N
    """
    from keras_mimo.models.mimoconv import MIMOConv
    from keras_mimo.models.mimoformer import MIMOFormer

    if isinstance(model, MIMOFormer):
        from keras_mimo.convert.mimoformer import from_mimoformer_reference

        return from_mimoformer_reference(state_dict, model)
    if not isinstance(model, MIMOConv):
        raise TypeError(
            "model must be a keras_mimo MIMOConv, WideResNet, MIMOFormer or Performer, "
            f"got {type(model).__name__}."
        )
    arrays = _load_state_dict(state_dict)
    plan = _weight_plan(model)
    gates = _skip_init_gates(arrays)
    problems = []
    if gates:
        problems.append(
            "the checkpoint was trained with skip_init=True (non-zero residual gates "
            + ", ".join(gates)
            + "); keras-mimo's blocks have no skipInit gate, so it cannot be loaded without "
            "changing its outputs"
        )
    load_by_plan(
        arrays,
        plan,
        f"Cannot load the reference checkpoint into {model.name} (depth={model.depth}, "
        f"width={model.width}, initial_width={model.initial_width}, "
        f"capacity={model.capacity}, binding={model.binding!r}, "
        f"activation={model.activation!r}). Build the model with the checkpoint's "
        "configuration.",
        unexpected_ok=_is_unused_reference_entry,
        problems=problems,
    )
    return model
