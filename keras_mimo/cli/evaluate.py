"""``keras-mimo evaluate``: accuracy of a saved model at several N (or grids)."""

import json
import os

from keras_mimo.cli.common import parse_int_list
from keras_mimo.grids import parse_grids


def add_arguments(parser):
    add = parser.add_argument
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--checkpoint",
        help="a .keras file written by keras-mimo train (best.keras / last.keras)",
    )
    source.add_argument(
        "--preset",
        help="a preset (name, directory or URL): scored on raw examples of its dataset's full "
        "test split, as its metadata's accuracy was",
    )
    add(
        "--dataset",
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

    if args.preset:
        return _evaluate_preset(args)
    if not args.dataset:
        raise ValueError("--checkpoint needs --dataset (the dataset the model was trained on).")
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


def _evaluate_preset(args):
    from keras_mimo.presets.registry import find_builtin
    from keras_mimo.registry import get_dataset

    if os.sep not in args.preset and not os.path.isdir(args.preset) and "://" not in args.preset:
        find_builtin(args.preset)  # a typo: the closest names, before Keras loads
    if getattr(args, "backend", None):
        os.environ["KERAS_BACKEND"] = args.backend
    from keras_mimo.presets.api import from_preset, preset_metadata
    from keras_mimo.presets.zoo import accuracy_per_point, full_test_split, operating_points

    metadata = preset_metadata(args.preset)
    dataset = get_dataset(args.dataset or metadata["dataset"])
    model = from_preset(args.preset, compile=False)
    points = operating_points(model)
    if dataset.family == "image":
        if args.superposition:
            points = parse_int_list(args.superposition, "--superposition", "1,2,4")
        images, labels = full_test_split(dataset.name, args.data_dir, args.split)
    else:
        from keras_mimo.presets.zoo import lra_examples

        if args.data_dir is None:
            raise ValueError(
                f"--preset {args.preset} reads {dataset.title}: pass --data-dir, the folder of its "
                f"data ({metadata.get('data_command') or 'see its metadata'})."
            )
        if args.superposition:
            points = ["%dx%d" % grid for grid in parse_grids(args.superposition)]
        images, labels = lra_examples(
            dataset.name, args.split, args.data_dir, metadata.get("data_options", {})
        )
    results = accuracy_per_point(model, images, labels, points, batch_size=args.batch_size)
    if args.json:
        print(json.dumps(results))
        return 0
    for point, accuracy in results.items():
        print(f"N={point}: accuracy {accuracy:.2f}% on {len(labels)} {dataset.title} examples")
    return 0
