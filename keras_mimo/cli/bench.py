"""``keras-mimo bench``: inference throughput of the models at N (or M x N grids).

Every option is checked here, before any Keras backend is imported: a mistake costs a fraction
of a second, not TensorFlow's start-up. The measurements run in :mod:`keras_mimo.bench`.
"""

from keras_mimo.cli.common import parse_int_list
from keras_mimo.grids import parse_grids


def add_arguments(parser):
    """Adds the options of ``keras-mimo bench`` to the argparse ``parser``."""
    parser.add_argument(
        "--family",
        choices=("mimoconv", "mimoformer"),
        default="mimoconv",
        help="mimoconv: WideResNet/MIMOConv images/s at N; mimoformer: attention and MIMOFormer "
        "sequences/s at M x N grids",
    )
    parser.add_argument(
        "--backends",
        default="active",
        help="comma-separated Keras backends to measure (tensorflow,jax,torch), 'all', "
        "or 'active' (KERAS_BACKEND)",
    )
    parser.add_argument("--depth", type=int, default=16, help="WRN depth of the body (default 16)")
    parser.add_argument("--width", type=int, default=4, help="WRN widening factor (default 4)")
    parser.add_argument(
        "--initial-width", type=int, default=4, help="MIMOConv stem width factor (default 4)"
    )
    parser.add_argument("--capacity", type=int, default=4, help="MIMOConv capacity (default 4)")
    parser.add_argument(
        "--superpositions", default="1,2,4", help="values of N to measure (default 1,2,4)"
    )
    parser.add_argument(
        "--models", default="wrn,mimoconv", help="which models: wrn, mimoconv or both"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="images (default 256) or sequences (default 64) per call",
    )
    parser.add_argument("--image-size", type=int, default=32, help="square image side (default 32)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed calls; the median counts (default 5)"
    )
    parser.add_argument(
        "--jit-compile",
        choices=("auto", "on", "off"),
        default="auto",
        help="XLA / jit: auto = Keras' default for the backend (TF on CPU: off; JAX: jit; "
        "torch: eager)",
    )
    parser.add_argument(
        "--reference",
        default=None,
        help="path to a checkout of IBM/multiple-input-multiple-output-nets: also time it "
        "(needs torch)",
    )
    parser.add_argument(
        "--output", default="bench-results", help="folder for the CSV and JSON results"
    )
    group = parser.add_argument_group("mimoformer family")
    group.add_argument(
        "--grids", default="1x1,2x2,4x4", help="grids M x N to measure (default 1x1,2x2,4x4)"
    )
    group.add_argument(
        "--seq-length", type=int, default=1024, help="tokens per sequence (default 1024)"
    )
    group.add_argument(
        "--embedding-dim",
        type=int,
        default=64,
        help="model width; 2 heads of half of it (default 64)",
    )
    group.add_argument("--num-layers", type=int, default=2, help="encoder blocks (default 2)")
    group.add_argument(
        "--random-features", type=int, default=256, help="FAVOR+ random features R (default 256)"
    )


def checked_options(args):
    """``(family module, options, backends)`` of parsed ``args``, every value checked.

    Raises a ValueError (or FileNotFoundError for ``--reference``) naming the option and its
    fix; imports no Keras. ``options`` is what the family's ``run`` and workers take.
    """
    from keras_mimo.bench import mimoconv, mimoformer, timing

    backends = timing.selected_backends(args.backends)
    if args.family == "mimoformer":
        family = mimoformer
        options = dict(
            grids=parse_grids(args.grids, flag="--grids"),
            batch=mimoformer.DEFAULT_BATCH if args.batch is None else args.batch,
            seq_length=args.seq_length,
            embedding_dim=args.embedding_dim,
            num_layers=args.num_layers,
            random_features=args.random_features,
            warmup=args.warmup,
            repeats=args.repeats,
        )
    else:
        family = mimoconv
        options = dict(
            depth=args.depth,
            width=args.width,
            initial_width=args.initial_width,
            capacity=args.capacity,
            superpositions=parse_int_list(args.superpositions, "--superpositions", "1,2,4"),
            models=[model.strip() for model in args.models.split(",") if model.strip()],
            batch=mimoconv.DEFAULT_BATCH if args.batch is None else args.batch,
            image_size=args.image_size,
            warmup=args.warmup,
            repeats=args.repeats,
            jit_compile=args.jit_compile,
            reference=args.reference,
        )
    family.check_options(options)
    return family, options, backends


def run(args):
    """Runs the benchmark of parsed ``args``; returns the result rows (also written to files)."""
    family, options, backends = checked_options(args)
    return family.run(options, backends, args.output)
