"""``keras-mimo evaluate``: accuracy of a saved model at several N (or grids)."""

import json
import os

from keras_mimo.cli.common import parse_int_list
from keras_mimo.grids import parse_grids


def add_arguments(parser):
    add = parser.add_argument
    add(
        "--checkpoint",
        required=True,
        help="a .keras file written by keras-mimo train (best.keras / last.keras)",
    )
    add(
        "--dataset",
        required=True,
        help="cifar10, cifar100, svhn, mnist or fashion-mnist; for MIMOFormer checkpoints the "
        "LRA task: listops, text, retrieval, image or pathfinder",
    )
    add(
        "--superposition",
        default=None,
        help="comma-separated N, e.g. 1,2,4 (default: the capacity); LRA: grids, e.g. 1x1,2x2",
    )
    add("--split", default="test", help="split to score (LRA: dev or test)")
    add("--batch-size", type=int, default=128, help="superpositions per batch")
    add("--data-dir")
    add("--json", action="store_true", help="print the results as JSON")
    add("--backend", choices=("tensorflow", "jax", "torch"))


def run(args):
    from keras_mimo.checks import positive_int
    from keras_mimo.registry import get_dataset

    info = get_dataset(args.dataset)  # an unknown name: closest matches, before Keras
    positive_int("--batch-size", args.batch_size)
    points = None
    if args.superposition:
        if info.family == "lra":
            points = parse_grids(args.superposition)
        else:
            points = parse_int_list(args.superposition, "--superposition", "1,2,4")
    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(
            f"checkpoint {args.checkpoint!r} is not a file: pass a .keras file that keras-mimo "
            "train wrote (best.keras or last.keras in the run folder)."
        )
    if getattr(args, "backend", None):
        os.environ["KERAS_BACKEND"] = args.backend
    from keras_mimo.training import evaluate

    results = evaluate(
        args.checkpoint,
        info.name,
        points,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        split=args.split,
    )
    if args.json:
        print(json.dumps({str(k): r for k, r in results.items()}))
        return 0
    for point, r in results.items():
        label = f"grid {point}" if info.family == "lra" else f"N={point}"
        print(f"{label}: accuracy {100 * r['accuracy']:.2f}%  loss {r['loss']:.4f}")
    return 0
