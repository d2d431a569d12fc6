"""``keras-mimo train``. Keras is imported only when a command runs,
so ``--backend`` can set KERAS_BACKEND first."""

import json
import os

from keras_mimo.training.precision import MODES


def _set_backend(args):
    if getattr(args, "backend", None):
        os.environ["KERAS_BACKEND"] = args.backend


# Flags that only the image (MIMOConv) recipes or only the LRA (MIMOFormer) recipes understand.
_IMAGE_ONLY = (
    "epochs",
    "mixup_alpha",
    "train_split",
    "eval_split",
    "superpositions",
    "steps_per_epoch",
    "data_parallel",
    "isometry_every",
)
_LRA_ONLY = (
    "steps",
    "grid",
    "warmup_steps",
    "mimo_warmup_steps",
    "eval_frequency",
    "eval_steps",
    "max_length",
)


def add_arguments(parser):
    from keras_mimo.training.recipes import list_recipes

    parser.add_argument(
        "--config",
        help="recipe name: an image recipe or an LRA configuration such as "
        "mimoformer-att-listops (--list shows them all with what they reproduce)",
    )
    parser.add_argument("--list", action="store_true", help="list the recipes and exit")
    parser.add_argument(
        "--output",
        help="run folder: logs, checkpoints; rerunning into it resumes (default runs/CONFIG)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        help="image recipes: override the epochs (one epoch = N passes at capacity N)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="image recipes: superpositions per batch (images per batch = "
        "this x capacity); LRA: sequences per step",
    )
    parser.add_argument(
        "--lr",
        type=float,
        help="peak learning rate of the one-cycle schedule (paper: 0.2; LRA 1e-4)",
    )
    parser.add_argument(
        "--steps", type=int, help="LRA: optimizer steps in all (the recipe's num_train_steps)"
    )
    parser.add_argument(
        "--grid",
        help="LRA MIMOFormer: the M x N grid to train at, e.g. 2x2 (default: the configuration's)",
    )
    parser.add_argument("--warmup-steps", type=int, help="LRA: linear learning-rate warm-up steps")
    parser.add_argument(
        "--mimo-warmup-steps", type=int, help="LRA 'att.': steps at the half grid first (0: none)"
    )
    parser.add_argument(
        "--eval-frequency", type=int, help="LRA: steps between evaluations on the dev split"
    )
    parser.add_argument("--eval-steps", type=int, help="LRA: dev batches per evaluation")
    parser.add_argument(
        "--max-length",
        type=int,
        help="LRA ListOps/Text/Retrieval: sequence length (data and model)",
    )
    parser.add_argument(
        "--mixed-precision",
        choices=MODES,
        help="mixed precision; auto follows the reference: LRA float16 on a GPU (else float32), "
        "image recipes float32. Image recipes take off or bfloat16 (2-4x faster convolutions "
        "on CPUs with AMX)",
    )
    parser.add_argument(
        "--mixup-alpha", type=float, help="mixup alpha (paper 1.0; 0 turns mixup off)"
    )
    parser.add_argument("--train-split", help="training split, e.g. 'train' or 'train[:10000]'")
    parser.add_argument("--eval-split", help="validation/test split, e.g. 'test'")
    parser.add_argument(
        "--superpositions", help="comma-separated N to validate at (default: the recipe's)"
    )
    parser.add_argument(
        "--steps-per-epoch", type=int, help="cap on updates per epoch (the schedule is sized to it)"
    )
    parser.add_argument(
        "--isometry-every",
        type=int,
        metavar="K",
        help="image recipes: the isometry penalty on every K-th update only, weighted K (lazy "
        "regularisation; default 1: every update, as the paper). Cuts its fixed cost per step",
    )
    parser.add_argument(
        "--model-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a model constructor argument, e.g. width=1 (repeatable; VALUE is JSON)",
    )
    parser.add_argument(
        "--data-dir", help="folder with the data (IDX files or a tensorflow-datasets data_dir)"
    )
    parser.add_argument(
        "--seed", type=int, help="random seed (default: 0; LRA recipes: the reference's 1234)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny model, 64 images, 2 epochs: a CPU smoke test"
    )
    parser.add_argument(
        "--data-parallel",
        action="store_true",
        help="train on all local devices (JAX DataParallel / TF MirroredStrategy)",
    )
    parser.add_argument("--no-tensorboard", action="store_true")
    parser.add_argument(
        "--jit-compile",
        choices=("auto", "on", "off"),
        default="auto",
        help="XLA / jit compilation of the train step (auto: Keras' default for the backend)",
    )
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=None,
        help="0 silent, 1 progress bar, 2 one line per epoch (default: 1 on a terminal, else 2)",
    )
    parser.add_argument(
        "--backend",
        choices=("tensorflow", "jax", "torch"),
        help="Keras backend (default: KERAS_BACKEND)",
    )
    parser.epilog = (
        "image recipes: " + ", ".join(list_recipes()) + "; LRA configurations: see --list"
    )


def run(args):
    _set_backend(args)
    from keras_mimo.training.recipes import RECIPES

    if args.list:
        from keras_mimo.models.mimoformer.configs import MIMOFORMER_CONFIGS, training_recipe

        for name in sorted(RECIPES):
            recipe = RECIPES[name]
            print(f"{name:36s} {recipe.description}\n{'':36s} {recipe.command}")
        for name in sorted(MIMOFORMER_CONFIGS):
            print(
                f"{name:36s} {MIMOFORMER_CONFIGS[name][2]}\n{'':36s} {training_recipe(name)['command']}"
            )
        return 0
    if not args.config:
        raise SystemExit("keras-mimo train: --config NAME is required (see --list).")
    from keras_mimo.training.lra import is_lra_config

    if is_lra_config(args.config):
        return _run_lra_train(args)
    _refuse(
        args,
        _LRA_ONLY,
        "an image recipe",
        "they apply to the LRA configurations (mimoformer-*, performer-*)",
    )
    from keras_mimo.training.loop import check_run_arguments, resolve_recipe, train

    overrides = {}
    if args.mixup_alpha is not None:
        overrides["mixup_alpha"] = args.mixup_alpha
    if args.train_split:
        overrides["train_split"] = args.train_split
    if args.eval_split:
        overrides["eval_split"] = args.eval_split
    try:  # every override is checked here, before any run folder is made
        if args.superpositions:
            overrides["eval_superpositions"] = tuple(
                _integers("--superpositions", args.superpositions, "4,2,1")
            )
        if args.model_override:
            model_overrides = dict(resolve_recipe(args.config, quick=args.quick).model_overrides)
            model_overrides.update(_model_overrides(args.model_override))
            overrides["model_overrides"] = model_overrides
        isometry_every = 1 if args.isometry_every is None else args.isometry_every
        recipe = resolve_recipe(
            args.config,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            quick=args.quick,
            **overrides,
        )
        check_run_arguments(recipe, args.steps_per_epoch, args.mixed_precision, isometry_every)
    except ValueError as error:
        raise SystemExit(f"keras-mimo train: {error}") from None
    output = args.output or os.path.join("runs", args.config + ("-quick" if args.quick else ""))
    train(
        args.config,
        output,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        data_dir=args.data_dir,
        seed=0 if args.seed is None else args.seed,
        quick=args.quick,
        verbose="auto" if args.verbose is None else args.verbose,
        data_parallel=args.data_parallel,
        tensorboard=not args.no_tensorboard,
        mixed_precision=args.mixed_precision or "auto",
        isometry_every=isometry_every,
        steps_per_epoch=args.steps_per_epoch,
        jit_compile={"auto": "auto", "on": True, "off": False}[args.jit_compile],
        **overrides,
    )
    return 0


def _refuse(args, names, what, why):
    given = [name for name in names if getattr(args, name) not in (None, False)]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise SystemExit(
            f"keras-mimo train: {flags} cannot be used with {args.config}, {what}: {why}."
        )


def _integers(flag, text, example):
    """The comma-separated integers of a flag's value; a ValueError that shows the expected form otherwise."""
    try:
        return [int(n) for n in text.split(",")]
    except ValueError:
        raise ValueError(
            f"{flag} {text!r} must be comma-separated integers, e.g. {example}."
        ) from None


def _model_overrides(items):
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(
                f"keras-mimo train: --model-override {item!r} must look like KEY=VALUE (VALUE in JSON)."
            )
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            raise SystemExit(
                f"keras-mimo train: --model-override {item!r}: VALUE must be JSON, e.g. width=1, "
                'pooling="mean" (quote strings).'
            ) from None
    return overrides


def _run_lra_train(args):
    from keras_mimo.training.lra import resolve_lra_recipe, train_lra

    _refuse(
        args,
        _IMAGE_ONLY,
        "an LRA configuration",
        "use --steps for the length of the run; the other flags apply to the image recipes",
    )
    overrides = dict(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        mimo_warmup_steps=args.mimo_warmup_steps,
        eval_frequency=args.eval_frequency,
        eval_steps=args.eval_steps,
        max_length=args.max_length,
        model_overrides=_model_overrides(args.model_override),
        seed=args.seed,
        grid=args.grid,
    )
    try:
        resolve_lra_recipe(
            args.config, quick=args.quick, **overrides
        )  # bad values: a message, not a traceback
    except ValueError as error:
        raise SystemExit(f"keras-mimo train: {error}") from None
    output = args.output or os.path.join("runs", args.config + ("-quick" if args.quick else ""))
    train_lra(
        args.config,
        output,
        data_dir=args.data_dir,
        quick=args.quick,
        verbose="auto" if args.verbose is None else args.verbose,
        tensorboard=not args.no_tensorboard,
        jit_compile={"auto": "auto", "on": True, "off": False}[args.jit_compile],
        mixed_precision=args.mixed_precision or "auto",
        **overrides,
    )
    return 0
