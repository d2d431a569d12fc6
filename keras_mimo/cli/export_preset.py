"""``keras-mimo export-preset RUN_FOLDER``: a finished image training run as a built-in preset
(scored on the full test split and the bundled subset, timed, written to zoo/; maintainers)."""

import os


def add_arguments(parser):
    add = parser.add_argument
    add(
        "run_folder", help="a folder keras-mimo train wrote (config.json, results.json, last.keras)"
    )
    add("--name", help="preset name (default: the run's recipe)")
    add("--zoo", help="zoo folder (default: the package's zoo/)")
    add(
        "--checkpoint",
        help="last.keras or best.keras (default: last for image runs, best for LRA runs, as "
        "their results report them)",
    )
    add("--baseline", help="preset the demo compares this one with (its WideResNet)")
    add(
        "--data-dir",
        help="folder with the full dataset (image runs: found as training finds it; LRA runs: "
        "required, the data the run trained on)",
    )
    add("--data-command", help="LRA: the command that made the data (recorded in the metadata)")
    add("--backend", choices=("tensorflow", "jax", "torch"))


def run(args):
    for name in ("config.json", "results.json", args.checkpoint or "config.json"):
        path = os.path.join(args.run_folder, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} is missing: pass the folder of a finished keras-mimo train run."
            )
    from keras_mimo.presets.zoo import export_run

    metadata = export_run(
        args.run_folder,
        name=args.name,
        zoo=args.zoo,
        checkpoint=args.checkpoint,
        data_dir=args.data_dir,
        baseline=args.baseline,
        data_command=args.data_command,
    )
    accuracy = ", ".join(f"N = {k}: {v:.2f}%" for k, v in metadata["accuracy"].items())
    print(f"exported {args.name or metadata['recipe']}: {accuracy}")
    return 0
