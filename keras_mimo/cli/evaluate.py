"""``keras-mimo evaluate``: accuracy of a saved model at several N (or grids)."""

import json

from keras_mimo.cli.train import _integers, _set_backend


def add_arguments(parser):
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="a .keras file written by keras-mimo train (best.keras / last.keras)",
    )
    parser.add_argument(
        "--dataset",
        required=True,
        help="cifar10, cifar100, svhn, mnist or fashion_mnist; "
        "for MIMOFormer checkpoints the LRA task: listops, text, "
        "retrieval, image or pathfinder",
    )
    parser.add_argument(
        "--superposition",
        default=None,
        help="comma-separated N, e.g. 1,2,4 (default: the capacity); "
        "LRA: grids, e.g. 1x1,2x2 (default: the capacity)",
    )
    parser.add_argument("--split", default="test", help="split to score (LRA: dev or test)")
    parser.add_argument("--batch-size", type=int, default=128, help="superpositions per batch")
    parser.add_argument("--data-dir")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"))


def run(args):
    _set_backend(args)
    from keras_mimo.data.lra import LRA_TASKS
    from keras_mimo.training.loop import evaluate

    if args.dataset in LRA_TASKS:
        from keras_mimo.training.lra import evaluate_lra

        grids = args.superposition.split(",") if args.superposition else None
        try:
            results = evaluate_lra(
                args.checkpoint,
                args.dataset,
                grids,
                data_dir=args.data_dir,
                batch_size=args.batch_size,
                split=args.split,
            )
        except ValueError as error:
            raise SystemExit(f"keras-mimo evaluate: {error}") from None
        if args.json:
            print(json.dumps(results))
        else:
            for grid, r in results.items():
                print(f"grid {grid}: accuracy {100 * r['accuracy']:.2f}%  loss {r['loss']:.4f}")
        return 0
    try:
        superpositions = (
            _integers("--superposition", args.superposition, "1,2,4")
            if args.superposition
            else None
        )
        results = evaluate(
            args.checkpoint,
            args.dataset,
            superpositions,
            data_dir=args.data_dir,
            batch_size=args.batch_size,
            split=args.split,
        )
    except ValueError as error:
        raise SystemExit(f"keras-mimo evaluate: {error}") from None
    if args.json:
        print(json.dumps({str(n): r for n, r in results.items()}))
    else:
        for n, r in results.items():
            print(f"N={n}: accuracy {100 * r['accuracy']:.2f}%  loss {r['loss']:.4f}")
    return 0
