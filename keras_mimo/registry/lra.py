"""The reference's Long Range Arena models and training settings, as data
(docs/design.md section 3).

Every number comes from the reference's ``MIMOFormer/code/lra_config.py`` and ``run_tasks.py``
(github IBM/multiple-input-multiple-output-nets, Apache-2.0) unless a comment says otherwise.

Names: ``{family}-{task}[-{variant}]``

* family: ``performer`` (FAVOR+ baseline, reference ``performer-256``), ``mimoformer-att``
  (attention in superposition, reference ``mimoformer``) or ``mimoformer-attmlp`` (the whole block
  in superposition, reference ``blockformer``);
* task: ``listops``, ``text``, ``retrieval``, ``image``, ``pathfinder`` (the reference's
  ``pathfinder32``, contour length 14), and ``seq-fashion-mnist``, keras-mimo's own task (below);
* variant: none = the "wide" model (one wide layer), ``-deep`` = the "deep" model (same total number
  of heads spread over several layers), and for Retrieval only ``-small``: the model the reference's
  ``lra_config.py`` actually runs for Retrieval (labelled "deep model" there, but smaller than the
  commented-out deep one).

Which reference block is "wide" and which "deep": the labels in ``lra_config.py``. The active block
is "wide" for ListOps, Image and Pathfinder but "deep" for Text and Retrieval (the README says the
file is "set to correspond [to] deep models", which only holds for those two); the other variant is
the commented-out block. Wide and deep keep the total number of heads (48 / 48 / 16 / 12 / 32) as in
Brown et al., "Wide attention is the way forward for Transformers?".

Model arguments (see :class:`~keras_mimo.models.MIMOFormer`): ``hidden_dim`` is the reference's
``transformer_hidden_dim``, ``num_random_features`` its ``rp_dim`` (256, ReLU kernel), ``dropout``
its ``dropout_prob`` (``attention_dropout`` only acts on softmax attention there, so it has no
counterpart), ``pooling="mean"`` its ``MEAN`` pooling. ``max_length`` is the reference's
``max_seq_len`` rounded up to a power of two as ``run_tasks.py`` does (2000 -> 2048, 4000 -> 4096):
that is the size of the position table the reference builds; the data stay 2000 / 4000 tokens long
(the recipe's ``data_options``).
``capacity`` ``(M, N)``: 'att.' uses ``extra_attn_config['mimoformer']`` (4 x 4 on every task),
'att.+MLP' ``extra_attn_config['blockformer']`` (2 x 2, Retrieval 4 x 4).

Vocabulary sizes are those of keras-mimo's LRA tokenisers (``keras_mimo.registry.datasets``), not
the reference's ``vocab_size`` upper bounds (32 ListOps, 512 elsewhere), which only size its
embedding table: ListOps 19, Text and Retrieval 257 (bytes + 1), Image, Pathfinder and
seq-fashion-mnist 256 (grey levels, ``token_offset=0`` as LRA and the reference: a black pixel is
token 0 and is masked like padding).

Training settings (``LRA_RECIPES``, per task; ``get_recipe('ARCHITECTURE.TASK')`` for one model):
AdamW (betas 0.9 / 0.999, eps 1e-6), one-cycle schedule with linear warm-up to ``learning_rate``
over ``warmup_steps`` and linear decay over the rest of ``num_train_steps`` (PyTorch ``OneCycleLR``
with ``anneal_strategy='linear'``, default div factors 25 and 1e4, and its default momentum cycling,
which on AdamW moves beta_1 0.95 -> 0.85 -> 0.95), mixed precision (``run_tasks.py`` forces
``mixed_precision=True``; the attention itself runs in float32), seed 1234, evaluation on
``num_eval_steps`` dev batches every ``eval_frequency`` steps, best dev checkpoint tested.
``batch_size`` is the reference's, counted in sequences (pairs for Retrieval) per optimizer step;
the model groups them into ``batch_size / (M * N)`` bundles (``batch_bundles``), and during the MIMO
warm-up of 'att.' (the first ``mimo_warmup_steps`` steps at grid M/2 x N/2, the reference only does
it for 'att.') the same sequences form four times as many bundles. The step counts and MIMO warm-ups
of docs/design.md section 3 (ListOps 20k / Text 40k / Retrieval 60k / Image 70k / Pathfinder 124.8k;
3000 / 6500 / 10000 / 10000 / 20800) are exactly those of ``lra_config.py``, so nothing had to be
chosen between them.

``seq-fashion-mnist`` (sequential Fashion-MNIST: the 28 x 28 grey images as 784 pixel tokens,
:mod:`keras_mimo.data.lra.seq_fashion_mnist`) is keras-mimo's own task: it is neither in the Long
Range Arena nor in the reference, so no number of its rows comes from them. It is LRA's Image task
on other images, so it takes Image's models (wide and deep), grids and training settings
unchanged; only the position table differs, 1024 = 784 rounded up to a power of two as for every
task (Image's 1024 tokens give 1024 too). Its data are local (Debian's dataset-fashion-mnist),
its train split 54000 sequences (Image: 45000).

====================== ===== ====== ==== ===== ====== ======= ===== ======= =====================
task / variant         emb   hidden head  heads layers max_len vocab classes reference block
====================== ===== ====== ==== ===== ====== ======= ===== ======= =====================
listops                512   2048   64   48    1      2048    19    10      active ("wide")
listops-deep           512   2048   64   8     6      2048    19    10      commented ("deep")
text                   512   2048   64   48    1      4096    257   2       commented ("wide")
text-deep              512   2048   64   8     6      4096    257   2       active ("deep")
retrieval              128   512    32   16    1      4096    257   2       commented ("wide"), dual
retrieval-deep         128   512    32   4     4      4096    257   2       commented ("deep"), dual
retrieval-small        32    64     32   2     2      4096    257   2       active ("deep"), dual
image                  64    128    64   12    1      1024    256   10      active ("wide")
image-deep             64    128    64   4     3      1024    256   10      commented ("deep")
pathfinder             128   128    128  32    1      1024    256   2       active ("wide")
pathfinder-deep        128   128    128  8     4      1024    256   2       commented ("deep")
seq-fashion-mnist      64    128    64   12    1      1024    256   10      ours: image's
seq-fashion-mnist-deep 64    128    64   4     3      1024    256   10      ours: image-deep's
====================== ===== ====== ==== ===== ====== ======= ===== ======= =====================

================= ===== ======= ====== ====== ======== ===== ===== ======= ========= =========
task              batch lr      warmup steps  MIMO wu  eval  eval  att.    att.+MLP  data
                                                        freq  steps M x N   M x N     length
================= ===== ======= ====== ====== ======== ===== ===== ======= ========= =========
listops           64    1e-4    1000   20000  3000     50    62    4 x 4   2 x 2     2000
text              32    1e-4    8000   40000  6500     500   781   4 x 4   2 x 2     4000
retrieval         32    1e-4    800    60000  10000    300   565   4 x 4   4 x 4     2 x 4000
image             256   1e-4    175    70000  10000    175   20    4 x 4   2 x 2     1024
pathfinder        256   1e-4    312    124800 20800    312   312   4 x 4   2 x 2     1024
seq-fashion-mnist 256   1e-4    175    70000  10000    175   20    4 x 4   2 x 2     784 (ours)
================= ===== ======= ====== ====== ======== ===== ===== ======= ========= =========

Weight decay is 0 everywhere. Each architecture ``A`` has one recipe, ``A.TASK`` (for example
``mimoformer-att-listops.listops``): ``keras-mimo train --recipe A.TASK`` reproduces its row
on a GPU.
This module is keras-free: :mod:`keras_mimo.registry.architectures` and
:mod:`keras_mimo.training.recipes` build the named architectures and recipes from it.
"""

from keras_mimo.registry.datasets import DATASETS, LRA_TASK_NAMES


def _power_of_two_at_least(n):
    return 1 << max(0, int(n) - 1).bit_length()


def task_arguments(task, length=None):
    """The model arguments a task's data fix: vocabulary, classes, position table, dual encoder.

    ``max_length`` is the sequence length (``length``, else the recipe's) rounded up to a power of
    two, as the reference's ``run_tasks.py`` sizes its position table (2000 -> 2048).
    """
    info = DATASETS[task]
    if length is None:
        length = LRA_RECIPES[task]["data"].get("max_length", info.default_length)
    arguments = dict(
        vocab_size=info.vocab_size,
        num_classes=info.num_classes,
        max_length=_power_of_two_at_least(length),
    )
    if task == "retrieval":
        arguments["dual"] = True  # the reference's ModelForSCDual
    return arguments


# lra_config.py "model" blocks: embedding_dim, transformer_hidden_dim, head_dim, num_head,
# num_layers.
_ARCH = {
    "listops": {
        "wide": dict(
            embedding_dim=512, hidden_dim=2048, head_dim=64, num_heads=48, num_layers=1
        ),  # active
        "deep": dict(
            embedding_dim=512, hidden_dim=2048, head_dim=64, num_heads=8, num_layers=6
        ),  # commented
    },
    "text": {
        "wide": dict(
            embedding_dim=512, hidden_dim=2048, head_dim=64, num_heads=48, num_layers=1
        ),  # commented
        "deep": dict(
            embedding_dim=512, hidden_dim=2048, head_dim=64, num_heads=8, num_layers=6
        ),  # active
    },
    "retrieval": {
        "wide": dict(
            embedding_dim=128, hidden_dim=512, head_dim=32, num_heads=16, num_layers=1
        ),  # commented
        "deep": dict(
            embedding_dim=128, hidden_dim=512, head_dim=32, num_heads=4, num_layers=4
        ),  # commented
        "small": dict(
            embedding_dim=32, hidden_dim=64, head_dim=32, num_heads=2, num_layers=2
        ),  # active
    },
    "image": {
        "wide": dict(
            embedding_dim=64, hidden_dim=128, head_dim=64, num_heads=12, num_layers=1
        ),  # active
        "deep": dict(
            embedding_dim=64, hidden_dim=128, head_dim=64, num_heads=4, num_layers=3
        ),  # commented
    },
    "pathfinder": {
        "wide": dict(
            embedding_dim=128, hidden_dim=128, head_dim=128, num_heads=32, num_layers=1
        ),  # active
        "deep": dict(
            embedding_dim=128, hidden_dim=128, head_dim=128, num_heads=8, num_layers=4
        ),  # commented
    },
}

# extra_attn_config: (mimo_M, mimo_N) of "mimoformer" ('att.') and "blockformer" ('att.+MLP').
_CAPACITY = {
    "listops": {"att": (4, 4), "att+mlp": (2, 2)},
    "text": {"att": (4, 4), "att+mlp": (2, 2)},
    "retrieval": {"att": (4, 4), "att+mlp": (4, 4)},
    "image": {"att": (4, 4), "att+mlp": (2, 2)},
    "pathfinder": {"att": (4, 4), "att+mlp": (2, 2)},
}

# Shared by every configuration: rp_dim 256 (ReLU kernel), dropout_prob 0.1, pooling_mode MEAN.
_COMMON = dict(num_random_features=256, dropout=0.1, pooling="mean")

# name prefix -> (attention argument, reference model name, words)
FAMILIES = {
    "performer": ("performer", "performer-256", "Performer (FAVOR+, R = 256) baseline"),
    "mimoformer-att": ("att", "mimoformer", "MIMOFormer 'att.' (attention in superposition)"),
    "mimoformer-attmlp": (
        "att+mlp",
        "blockformer",
        "MIMOFormer 'att.+MLP' (whole block in superposition)",
    ),
}

# lra_config.py "training" blocks (+ MIMO_warmup of extra_attn_config['mimoformer']) and the data
# options our loaders need to see what the reference saw. batch_size: sequences (pairs) per
# optimizer step.
LRA_RECIPES = {
    "listops": dict(
        batch_size=64,
        learning_rate=1e-4,
        warmup_steps=1000,
        lr_decay="linear",
        weight_decay=0.0,
        num_train_steps=20000,
        mimo_warmup_steps=3000,
        eval_frequency=50,
        num_eval_steps=62,
        data=dict(max_length=2000),
    ),
    "text": dict(
        batch_size=32,
        learning_rate=1e-4,
        warmup_steps=8000,
        lr_decay="linear",
        weight_decay=0.0,
        num_train_steps=40000,
        mimo_warmup_steps=6500,
        eval_frequency=500,
        num_eval_steps=781,
        data=dict(max_length=4000),
    ),  # our loader's default is 1000 (LRA's); the reference uses 4000
    "retrieval": dict(
        batch_size=32,
        learning_rate=1e-4,
        warmup_steps=800,
        lr_decay="linear",
        weight_decay=0.0,
        num_train_steps=60000,
        mimo_warmup_steps=10000,
        eval_frequency=300,
        num_eval_steps=565,
        data=dict(max_length=4000),
    ),
    "image": dict(
        batch_size=256,
        learning_rate=1e-4,
        warmup_steps=175,
        lr_decay="linear",
        weight_decay=0.0,
        num_train_steps=70000,
        mimo_warmup_steps=10000,
        eval_frequency=175,
        num_eval_steps=20,
        data=dict(token_offset=0),
    ),
    "pathfinder": dict(
        batch_size=256,
        learning_rate=1e-4,
        warmup_steps=312,
        lr_decay="linear",
        weight_decay=0.0,
        num_train_steps=124800,
        mimo_warmup_steps=20800,
        eval_frequency=312,
        num_eval_steps=312,
        data=dict(difficulty="hard", resolution=32, token_offset=0),
    ),  # curv_contour_length_14
}

# keras-mimo's own tasks, in neither LRA nor the reference -> the LRA task whose models (wide and
# deep), grids and training settings they take unchanged (their loaders take its data options).
OWN_TASKS = {"seq-fashion-mnist": "image"}
for _task, _like in OWN_TASKS.items():
    _ARCH[_task] = {variant: dict(arch) for variant, arch in _ARCH[_like].items()}
    _CAPACITY[_task] = dict(_CAPACITY[_like])
    LRA_RECIPES[_task] = {**LRA_RECIPES[_like], "data": dict(LRA_RECIPES[_like]["data"])}

# Shared by every recipe (run_tasks.py).
# PyTorch's OneCycleLR (defaults div_factor 25, final_div_factor 1e4, cycle_momentum=True) starts at
# learning_rate / 25, ends at learning_rate / 25e4 and, on AdamW, also cycles beta_1 linearly
# 0.95 -> 0.85 (peak learning rate) -> 0.95, overriding the 0.9 given to AdamW.
RECIPE_COMMON = dict(
    optimizer="adamw",
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-6,
    schedule="one-cycle",
    div_factor=25.0,
    final_div_factor=1e4,
    cycle_beta_1=(0.95, 0.85),
    mixed_precision=True,
    seed=1234,
)


def _name(prefix, task, variant):
    return f"{prefix}-{task}" + ("" if variant == "wide" else f"-{variant}")


def lra_architectures():
    """``name -> (class name, constructor arguments, description, facts)`` of every LRA model.

    ``facts`` holds ``task``, ``variant``, ``attention`` and ``capacity`` (the M x N grid; 1 x 1
    for the Performer baseline).
    """
    label = {
        "wide": "wide",
        "deep": "deep",
        "small": "small (the reference's active Retrieval model)",
    }
    entries = {}
    for task in LRA_TASK_NAMES:
        for variant, arch in _ARCH[task].items():
            for prefix, (attention, ref_name, words) in FAMILIES.items():
                kwargs = {**task_arguments(task), **arch, **_COMMON}
                if attention == "performer":
                    class_name, capacity = "Performer", (1, 1)
                else:
                    class_name, capacity = "MIMOFormer", _CAPACITY[task][attention]
                    kwargs.update(attention=attention, capacity=capacity)
                layers = arch["num_layers"]
                heads = f"{arch['num_heads']} heads x {layers} layer{'s' * (layers > 1)}"
                grid = "" if attention == "performer" else f", grid {capacity[0]} x {capacity[1]}"
                if task in OWN_TASKS:
                    like = OWN_TASKS[task]
                    task_words = (
                        f"{task} (keras-mimo's own task, not in LRA nor in the reference; "
                        f"LRA {like}'s model and settings)"
                    )
                    reference = f"as reference {ref_name} on {like}"
                else:
                    task_words, reference = task, f"reference {ref_name}"
                description = (
                    f"LRA {task_words}: {words}{grid}, {label[variant]} model "
                    f"({arch['embedding_dim']}-dim, {heads}; {reference})."
                )
                facts = dict(task=task, variant=variant, attention=attention, capacity=capacity)
                entries[_name(prefix, task, variant)] = (class_name, kwargs, description, facts)
    return entries
