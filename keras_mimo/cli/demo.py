"""``keras-mimo demo``: a pretrained model in superposition on real bundled test images."""

from keras_mimo.demo import DEFAULT_PRESET


def add_arguments(parser):
    add = parser.add_argument
    add("--preset", default=DEFAULT_PRESET, help=f"preset to run (default {DEFAULT_PRESET})")
    add(
        "--images",
        help="a folder of your own PNG/JPEG files: prints the predicted class per file at each N "
        "(Fashion-MNIST presets expect a light item on a dark background, as the dataset has)",
    )
    add("--output", default="demo-output", help="folder for the table and the plot")
    add("--batch-size", type=int, help="images per timed predict call (default 1000)")
    add("--repeats", type=int, help="timed rounds per N (default 7)")
    add("--small", action="store_true", help="1000 images, two timed rounds: a quick check")
    add("--backend", choices=("tensorflow", "jax", "torch"))


def run(args):
    from keras_mimo.checks import positive_int
    from keras_mimo.presets.registry import find_builtin

    for flag in ("batch_size", "repeats"):
        if getattr(args, flag) is not None:
            positive_int("--" + flag.replace("_", "-"), getattr(args, flag))
    if "/" not in args.preset:
        find_builtin(args.preset)  # a typo: the closest names, before Keras loads
    from keras_mimo.demo import run_demo

    run_demo(
        args.preset,
        output=args.output,
        images=args.images,
        batch_size=args.batch_size,
        repeats=args.repeats,
        small=args.small,
    )
    return 0
