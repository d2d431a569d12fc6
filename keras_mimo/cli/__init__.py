"""The ``keras-mimo`` command line: one module per command (demo, presets, bench, train,
evaluate, export-preset).

``keras-mimo [--backend NAME] [--debug] COMMAND ...``. Importing this package, and building the
parser, imports neither Keras nor TensorFlow: :func:`main` first sets KERAS_BACKEND (from the
global ``--backend`` or the command's own) and quiets TensorFlow's start-up logging, then runs
the command, which imports Keras when it needs it.

Mistakes of the user (a ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
PermissionError, or a SystemExit carrying a message) print ``keras-mimo COMMAND: error:
MESSAGE`` on stderr and exit with status 2, like argparse's own errors; ``--debug`` shows the
traceback instead and leaves all logging at its defaults. Other exceptions are bugs: they keep
their traceback and exit 1.
"""

import argparse
import sys

from keras_mimo.cli import common

__all__ = ["build_parser", "main", "USER_ERRORS"]

USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)
USAGE_ERROR = 2  # the exit status of argparse's errors, and of ours


def build_parser():
    """The argparse parser of ``keras-mimo``: global options and one sub-parser per command.

    Each command's module has ``add_arguments(parser)`` and ``run(args)``; the sub-parser stores
    ``run`` as ``args.handler``. Imports no Keras.

    Example:
        >>> args = build_parser().parse_args(["--backend", "jax", "bench", "--repeats", "1"])
        >>> args.command, args.global_backend, args.repeats
        ('bench', 'jax', 1)
    """
    parser = argparse.ArgumentParser(
        prog="keras-mimo", description="Computation in superposition for Keras 3."
    )
    parser.add_argument(
        "--backend",
        dest="global_backend",
        choices=common.BACKENDS,
        help="Keras backend for the command (default: KERAS_BACKEND); the same as the "
        "command's own --backend",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback of every error and leave TensorFlow's logging on",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from keras_mimo.cli import bench, demo, evaluate, export_preset, presets, train

    for name, module, help_text in (
        ("demo", demo, "a pretrained model in superposition on bundled real test images"),
        ("presets", presets, "the pretrained presets: dataset, capacity, accuracy per N"),
        ("bench", bench, "inference throughput of the models at N = 1, 2, 4 (or M x N grids)"),
        ("train", train, "train a named recipe of the paper (resumable)"),
        ("evaluate", evaluate, "accuracy of a saved model or a preset at several N"),
        ("export-preset", export_preset, "a finished training run as a zoo preset"),
    ):
        command = commands.add_parser(name, help=help_text)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv=None):
    """Runs ``keras-mimo`` with the arguments ``argv`` (default: ``sys.argv[1:]``).

    Returns the exit status: 0 when the command succeeds (whatever its handler returns, unless
    an int), 2 for a user mistake, after printing ``keras-mimo COMMAND: error: MESSAGE`` on
    stderr. argparse's errors raise SystemExit(2) as usual; any other exception propagates.

    Example:
        >>> main(["bench", "--depth", "12"])  # doctest: +SKIP
        keras-mimo bench: error: --depth 12 must be 6k + 4, e.g. 10, 16, 22 or 28.
        2
    """
    args = build_parser().parse_args(argv)
    try:
        _choose_backend(args)
        if not args.debug:
            common.quiet_environment()
        result = args.handler(args)
    except USER_ERRORS as error:
        if args.debug:
            raise
        return _report(args.command, str(error))
    except SystemExit as error:  # older handlers still raise SystemExit("keras-mimo ...: ...")
        if args.debug or not isinstance(error.code, str):
            raise
        return _report(args.command, error.code)
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _choose_backend(args):
    command_backend = getattr(args, "backend", None)
    if args.global_backend and command_backend and command_backend != args.global_backend:
        raise ValueError(
            f"--backend {args.global_backend} (before the command) and --backend "
            f"{command_backend} (after it) disagree; give one of them."
        )
    backend = command_backend or args.global_backend
    if hasattr(args, "backend"):
        args.backend = backend  # the command sees the global choice as its own
    common.set_backend(backend)


def _report(command, message):
    prefix = f"keras-mimo {command}: "
    message = message[len(prefix) :] if message.startswith(prefix) else message
    if message.startswith("error: "):
        message = message[len("error: ") :]
    print(f"{prefix}error: {message}", file=sys.stderr)
    return USAGE_ERROR
