"""Loads weights of the reference PyTorch MIMOFormer / Performer into our MIMOFormer models.

The reference (IBM/multiple-input-multiple-output-nets, folder MIMOFormer/code) trains a
``ModelForSC`` (or ``ModelForSCDual`` for LRA Retrieval): an encoder ``model`` (embeddings,
``transformer_<i>`` blocks, a final LayerNorm) and a classifier ``seq_classifer`` (the
reference's spelling). Its checkpoints hold ``{"model_state_dict": state_dict}``. The mapping:

* ``nn.Linear`` stores ``(out, in)``, Keras' Dense ``(in, out)``: a transpose;
* LayerNorm ``weight`` / ``bias`` are ``gamma`` / ``beta``; embeddings are copied;
* the FAVOR+ projection (``mha.attn.projection_matrix``, for the Performer
  ``mha.attn.attn_fn.projection_matrix``) is copied;
* the bipolar keys ``mha.attn.bindings`` ``(1, M, N, 1, 1, D)`` become ``(M, N, D)``, the
  stream keys of 'att.+MLP' ``mha.attn.bindings_embedding`` ``(1, M, N, 1, E)`` ``(M, N, E)``;
* a checkpoint with tied weights (one ``transformer`` block run ``num_layers`` times) loads
  the same weights into every block, which computes the same function.
"""

import numpy as np

from keras_mimo.convert._plan import load_by_plan
from keras_mimo.convert.reference import _load_state_dict

# The reference's attn_type -> our attention.
ATTENTION_TYPES = {"performer-256": "performer", "mimoformer": "att", "blockformer": "att+mlp"}
ENCODER, HEAD = "model.", "seq_classifer."


def mimoformer_arguments(config, dual=False):
    """MIMOFormer constructor arguments for a reference model configuration.

    Args:
        config: the reference's model configuration (a dict as ``lra_config.config[task]
            ["model"]`` updated with the attention's ``extra_attn_config``, or as saved by
            its training runs): ``vocab_size``, ``max_seq_len``, ``num_classes``,
            ``embedding_dim``, ``transformer_hidden_dim``, ``num_head``, ``head_dim``,
            ``num_layers``, ``attn_type``, ``rp_dim``, ``mimo_M``, ``mimo_N``,
            ``dropout_prob``, ``pooling_mode``.
        dual: True for a ``ModelForSCDual`` (LRA Retrieval) checkpoint.

    Returns:
        A dict for ``MIMOFormer(**arguments)``, with the reference's "MEAN" pooling (padding
        zeroed, mean over the whole length: ``pooling="mean"``).

    Raises:
        ValueError: for what our MIMOFormer does not compute: attention types other than
            "performer-256", "mimoformer" and "blockformer", CLS pooling, fixed (sinusoidal)
            position embeddings, kernels other than ReLU.

    Example:
        >>> arguments = mimoformer_arguments(dict(
        ...     vocab_size=12, max_seq_len=16, num_classes=3, embedding_dim=12,
        ...     transformer_hidden_dim=24, num_head=2, head_dim=8, num_layers=2,
        ...     attn_type="mimoformer", rp_dim=16, mimo_M=2, mimo_N=2, dropout_prob=0.1,
        ...     pooling_mode="MEAN"))
        >>> arguments["attention"], arguments["capacity"], arguments["pooling"]
        ('att', (2, 2), 'mean')
    """
    attn_type = config.get("attn_type")
    if attn_type not in ATTENTION_TYPES:
        raise ValueError(
            f"attn_type={attn_type!r} has no keras-mimo counterpart: use one of "
            f"{sorted(ATTENTION_TYPES)}."
        )
    pooling = config.get("pooling_mode", "MEAN")
    if pooling != "MEAN":
        raise ValueError(
            f"pooling_mode={pooling!r}: keras-mimo's MIMOFormer pools with MEAN only "
            "(pooling='mean')."
        )
    if not config.get("learn_pos_emb", True):
        raise ValueError(
            "learn_pos_emb=False (sinusoidal position embeddings): keras-mimo's MIMOFormer "
            "learns its position embedding."
        )
    if config.get("kernel_type", "relu") != "relu":
        raise ValueError(
            f"kernel_type={config['kernel_type']!r}: keras-mimo's FAVOR+ uses the ReLU kernel."
        )
    attention = ATTENTION_TYPES[attn_type]
    capacity = (1, 1) if attention == "performer" else (config["mimo_M"], config["mimo_N"])
    return dict(
        vocab_size=config["vocab_size"],
        max_length=config["max_seq_len"],
        num_classes=config["num_classes"],
        embedding_dim=config["embedding_dim"],
        hidden_dim=config["transformer_hidden_dim"],
        num_heads=config["num_head"],
        head_dim=config["head_dim"],
        num_layers=config["num_layers"],
        attention=attention,
        capacity=tuple(int(c) for c in capacity),
        num_random_features=config["rp_dim"],
        dropout=config.get("dropout_prob", 0.0),
        pooling="mean",
        dual=bool(dual),
    )


def _squeeze(axes):
    """Drops the size-1 ``axes`` of a reference array (a ValueError when one is not of size 1)."""

    def convert(array):
        if array.ndim <= max(axes):
            raise ValueError(f"expected at least {max(axes) + 1} dimensions")
        return np.squeeze(array, axis=axes)

    return convert


def _weight_plan(model, tied):
    """(reference name, keras variable, converter from the reference array) for every weight."""
    plan = []

    def same(array):
        return array

    def transposed(array):
        return array.T

    def dense(prefix, layer):
        plan.append((f"{prefix}.weight", layer.kernel, transposed))
        plan.append((f"{prefix}.bias", layer.bias, same))

    def norm(prefix, layer):
        plan.append((f"{prefix}.weight", layer.gamma, same))
        plan.append((f"{prefix}.bias", layer.beta, same))

    embeddings = ENCODER + "embeddings."
    plan.append((embeddings + "word_embeddings.weight", model.token_embedding.embeddings, same))
    plan.append(
        (embeddings + "position_embeddings.weight", model.position_embedding.embeddings, same)
    )
    for index, block in enumerate(model.blocks):
        prefix = ENCODER + ("transformer." if tied else f"transformer_{index}.")
        norm(prefix + "norm1", block.norm1)
        norm(prefix + "norm2", block.norm2)
        dense(prefix + "mha.W_q", block.attn.query_dense)
        dense(prefix + "mha.W_k", block.attn.key_dense)
        dense(prefix + "mha.W_v", block.attn.value_dense)
        dense(prefix + "mha.ff", block.attn.output_dense)
        dense(prefix + "mlpblock.0", block.mlp_hidden)
        dense(prefix + "mlpblock.3", block.mlp_output)
        attention = prefix + "mha.attn."
        core = block.attn.core
        if model.attention == "performer":
            plan.append((attention + "attn_fn.projection_matrix", core.projection, same))
            continue
        plan.append((attention + "projection_matrix", core.projection, same))
        plan.append((attention + "bindings", core.keys, _squeeze((0, 3, 4))))
        if model.attention == "att+mlp":
            plan.append((attention + "bindings_embedding", block.stream_keys, _squeeze((0, 3))))
    norm(ENCODER + "norm", model.final_norm)
    dense(HEAD + "mlpblock.0", model.classifier_hidden)
    dense(HEAD + "mlpblock.2", model.classifier)
    return plan


def from_mimoformer_reference(state_dict, model):
    """Loads a reference MIMOFormer / Performer state_dict into ``model`` (a MIMOFormer).

    The contract is that of :func:`keras_mimo.convert.from_reference` for MIMOConv: every
    weight of ``model`` is replaced (embeddings, blocks, FAVOR+ projections, keys, classifier),
    or, if anything does not fit, none is. Build the model with the checkpoint's configuration
    (:func:`mimoformer_arguments` reads it from the reference's config); the outputs then
    agree with the reference's (eval mode) up to float32 rounding, at the capacity grid and at
    every smaller grid (the MIMO warm-up).

    Args:
        state_dict: the reference ``ModelForSC`` / ``ModelForSCDual`` state_dict, a mapping of
            names (``model.embeddings.word_embeddings.weight``, ...,
            ``seq_classifer.mlpblock.2.bias``) to numpy or torch arrays; or a path to a
            ``.pt`` file holding one, or a reference training checkpoint
            ``{"model_state_dict": ...}`` (reading a file needs torch).
        model: a built :class:`keras_mimo.models.MIMOFormer` (or Performer) whose
            configuration matches the checkpoint.

    Returns:
        ``model``, with every weight replaced.

    Raises:
        TypeError: ``model`` is not a MIMOFormer, or ``state_dict`` is neither a mapping nor
            a path.
        ValueError: listing the names in the state_dict the model has no place for, the model
            weights the state_dict lacks and the shape mismatches, all at once, before any
            weight is changed.

    Example:
        >>> import torch  # doctest: +SKIP
        >>> from keras_mimo.convert import from_mimoformer_reference, mimoformer_arguments
        >>> from keras_mimo.models import MIMOFormer
        >>> checkpoint = torch.load("model_best.pth.tar", map_location="cpu")  # doctest: +SKIP
        >>> model = MIMOFormer(**mimoformer_arguments(reference_config))  # doctest: +SKIP
        >>> from_mimoformer_reference(checkpoint["model_state_dict"], model)  # doctest: +SKIP
        >>> logits = model.predict(token_ids)  # doctest: +SKIP
    """
    from keras_mimo.models.mimoformer import MIMOFormer

    if not isinstance(model, MIMOFormer):
        raise TypeError(
            f"model must be a keras_mimo MIMOFormer or Performer, got {type(model).__name__} "
            "(keras_mimo.convert.from_reference loads MIMOConv checkpoints)."
        )
    arrays = _load_state_dict(state_dict)
    tied = any(name.startswith(ENCODER + "transformer.") for name in arrays)
    plan = _weight_plan(model, tied)
    load_by_plan(
        arrays,
        plan,
        f"Cannot load the reference checkpoint into {model.name} "
        f"(attention={model.attention!r}, capacity={model.capacity}, "
        f"num_layers={model.num_layers}, embedding_dim={model.embedding_dim}, "
        f"dual={model.dual}). Build the model with the checkpoint's configuration "
        "(keras_mimo.convert.mimoformer_arguments reads it from the reference's config).",
    )
    return model
