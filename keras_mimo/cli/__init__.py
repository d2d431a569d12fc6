"""The ``keras-mimo`` command line."""

import argparse
import sys


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-mimo", description="Computation in superposition for Keras 3."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    from keras_mimo import bench

    bench_parser = commands.add_parser(
        "bench", help="inference throughput of WideResNet and MIMOConv at N = 1, 2, 4"
    )
    bench.add_arguments(bench_parser)
    bench_parser.set_defaults(handler=bench.run)

    from keras_mimo.cli import evaluate, train

    train_parser = commands.add_parser(
        "train", help="train a named recipe of the paper (resumable)"
    )
    train.add_arguments(train_parser)
    train_parser.set_defaults(handler=train.run)
    evaluate_parser = commands.add_parser("evaluate", help="accuracy of a saved model at several N")
    evaluate.add_arguments(evaluate_parser)
    evaluate_parser.set_defaults(handler=evaluate.run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    result = args.handler(args)
    return (
        result if isinstance(result, int) else 0
    )  # handlers may return their results; the exit code is 0


if __name__ == "__main__":
    sys.exit(main())
