"""Inference throughput of WideResNet and MIMOConv at N = 1, 2, 4 (``keras-mimo bench``).

Throughput is images per second from the median of ``repeats`` timed calls after ``warmup``
untimed ones, on one fixed batch. One MIMOConv serves every N (as in use), and the cases take
turns in every round. Each backend, and the optional reference PyTorch implementation
(github.com/IBM/multiple-input-multiple-output-nets), is measured in its own process.

Only the workers import Keras (or torch); :func:`check_options` and :func:`reference_source`
check a configuration without importing either.
"""

import os
import pathlib
import sys

from keras_mimo.bench import timing

FIELDS = [
    "implementation",
    "backend",
    "model",
    "depth",
    "width",
    "initial_width",
    "capacity",
    "superposition",
    "batch",
    "image_size",
    "compile",
    "median_s",
    "images_per_s",
    "speedup_vs_n1",
    "params",
    "threads",
    "cpu",
    "timestamp",
]
MODELS = ("wrn", "mimoconv")
DEFAULT_BATCH = 256
TABLE = [
    ("implementation", "implementation", "<15"),
    ("backend", "backend", "<18"),
    ("model", "model", "<11"),
    ("N", "superposition", ">3"),
    ("batch", "batch", ">7"),
    ("images/s", "images_per_s", ">11.1f"),
    ("x N=1", "speedup_vs_n1", ">8"),
    ("ms/batch", lambda row: 1000 * row["median_s"], ">10.1f"),
]


def check_options(options):
    """Raises a ValueError naming the option and its fix if ``options`` cannot be measured.

    ``options`` holds depth, width, initial_width, capacity, superpositions (list of N),
    models (list of ``wrn`` / ``mimoconv``), batch, image_size, warmup, repeats, jit_compile
    and reference (a path or None). The depth must be 6k + 4, every N must divide the
    capacity, sizes and counts must be at least 1 (warmup at least 0). Imports no Keras.

    Example:
        >>> check_options(dict(options_example(), depth=12))
        Traceback (most recent call last):
        ...
        ValueError: --depth 12 must be 6k + 4, e.g. 10, 16, 22 or 28.
    """
    unknown = [model for model in options["models"] if model not in MODELS]
    if unknown or not options["models"]:
        raise ValueError(
            f"--models {','.join(options['models'])!r}: unknown model(s) {unknown}; "
            "use wrn and/or mimoconv, e.g. --models wrn,mimoconv."
        )
    if options["depth"] < 10 or (options["depth"] - 4) % 6:
        raise ValueError(f"--depth {options['depth']} must be 6k + 4, e.g. 10, 16, 22 or 28.")
    for key in ("width", "initial_width", "capacity", "batch", "image_size", "repeats"):
        if options[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} {options[key]} must be at least 1.")
    if options["warmup"] < 0:
        raise ValueError(f"--warmup {options['warmup']} must be at least 0.")
    bad = [n for n in options["superpositions"] if n < 1 or options["capacity"] % n]
    if bad:
        raise ValueError(
            f"--superpositions {bad} must divide --capacity {options['capacity']}, "
            "e.g. --capacity 4 --superpositions 1,2,4."
        )
    if options["jit_compile"] not in ("auto", "on", "off"):
        raise ValueError(f"--jit-compile {options['jit_compile']!r} must be auto, on or off.")
    if options["reference"]:
        reference_source(options["reference"])


def options_example():
    """The options of ``keras-mimo bench`` at its defaults (a template for :func:`run`)."""
    return dict(
        depth=16,
        width=4,
        initial_width=4,
        capacity=4,
        superpositions=[1, 2, 4],
        models=list(MODELS),
        batch=DEFAULT_BATCH,
        image_size=32,
        warmup=2,
        repeats=5,
        jit_compile="auto",
        reference=None,
    )


def reference_source(path):
    """The folder holding the reference's ``superposition.py``.

    ``path`` is a checkout of IBM/multiple-input-multiple-output-nets or its MIMOConv/src
    folder; a FileNotFoundError says where to point it otherwise.
    """
    source = pathlib.Path(path).expanduser()
    for candidate in (source / "MIMOConv" / "src", source):
        if (candidate / "superposition.py").exists():
            return candidate
    raise FileNotFoundError(
        f"--reference {source} holds no MIMOConv/src/superposition.py; point it at a checkout "
        "of github.com/IBM/multiple-input-multiple-output-nets."
    )


def run(options, backends, output):
    """Measures every backend of ``backends`` (and the reference if asked) and writes the results.

    ``options`` as :func:`check_options` takes them (checked here again); ``output`` is the
    folder for ``bench-STAMP.csv`` and ``.json`` (columns ``FIELDS``). Prints the table to
    stdout and returns the result rows.
    """
    check_options(options)
    print(
        f"Benchmark: WRN-{options['depth']}-{options['width']} body, batch {options['batch']}, "
        f"{options['image_size']}x{options['image_size']}x3, {os.cpu_count()} CPU threads",
        file=sys.stderr,
    )
    rows = []
    for backend in backends:
        rows += timing.run_worker("keras", options, backend)
    if options["reference"]:
        rows += timing.run_worker("reference", options)
    rows = add_speedups(rows)
    print(format_table(rows))
    for (model, n), (backend, ratio) in sorted(reference_ratios(rows).items()):
        print(f"keras-mimo ({backend}) / reference, {model} N={n}: {ratio:.2f}x")
    csv_path, json_path = timing.write_results(rows, output, FIELDS)
    print(f"results: {csv_path} {json_path}")
    return rows


def cases(options):
    """(model name, capacity, superposition) rows measured for each implementation."""
    rows = [("WideResNet", 1, 1)] if "wrn" in options["models"] else []
    if "mimoconv" in options["models"]:
        rows += [
            ("MIMOConv", options["capacity"], n)
            for n in options["superpositions"]
            if options["capacity"] % n == 0
        ]
    return rows


def keras_worker(options):
    """Measures our models on the backend named by KERAS_BACKEND; returns result rows."""
    import keras
    import numpy as np

    from keras_mimo.models import MIMOConv, WideResNet

    backend = keras.backend.backend()
    shape = (options["image_size"], options["image_size"], 3)
    images = np.random.default_rng(0).normal(size=(options["batch"],) + shape).astype("float32")
    models = {}
    if "wrn" in options["models"]:
        models["WideResNet"] = WideResNet(
            depth=options["depth"], width=options["width"], input_shape=shape, seed=0
        )
    if "mimoconv" in options["models"]:
        models["MIMOConv"] = MIMOConv(
            depth=options["depth"],
            width=options["width"],
            initial_width=options["initial_width"],
            capacity=options["capacity"],
            input_shape=shape,
            seed=0,
        )
    for model in models.values():
        if options["jit_compile"] != "auto":
            model.jit_compile = options["jit_compile"] == "on"

    def runner(model, n):
        def run():
            model.superposition = n  # one set of weights; each N keeps its own compiled function
            keras.ops.convert_to_numpy(model.predict_on_batch(images))

        return run

    measured = cases(options)
    seconds = timing.interleaved_medians(
        {case: runner(models[case[0]], case[2]) for case in measured},
        options["warmup"],
        options["repeats"],
    )
    rows = []
    for model_name, capacity, n in measured:
        model = models[model_name]
        if backend == "jax":
            compile_mode = "jit" if model.jit_compile else "eager"
        elif backend == "torch":
            compile_mode = "torch.compile" if model.jit_compile else "eager"
        else:
            compile_mode = "xla" if model.jit_compile else "graph"
        elapsed = seconds[(model_name, capacity, n)]
        rows.append(
            _row(
                options,
                "keras-mimo",
                backend,
                model_name,
                capacity,
                n,
                elapsed,
                model.count_params(),
                compile_mode,
            )
        )
        timing.progress(
            f"  {backend:<10} {model_name:<10} N={n}: {options['batch'] / elapsed:9.1f} images/s"
        )
    return rows


def reference_worker(options):
    """Measures the reference PyTorch implementation (eval mode, no_grad) at the same cases."""
    import torch

    sys.path.insert(0, str(reference_source(options["reference"])))
    from models.superwideisonet import AdjustedISOBlock, SuperWideISONet
    from models.superwideresnet import SuperWideResnet

    torch.manual_seed(0)
    layers = [(options["depth"] - 4) // 6] * 3
    images = torch.randn(options["batch"], 3, options["image_size"], options["image_size"])
    models = {}
    if "wrn" in options["models"]:
        models["WideResNet"] = SuperWideResnet(
            1, "None", options["width"], layers, initial_width=1, num_classes=10
        ).eval()
    if "mimoconv" in options["models"]:
        models["MIMOConv"] = SuperWideISONet(
            options["capacity"],
            "HRR",
            options["width"],
            layers,
            initial_width=options["initial_width"],
            num_classes=10,
            block=AdjustedISOBlock,
        ).eval()

    def runner(model, n):
        def run():
            model.num_img_sup = n
            with torch.no_grad():
                model(images)

        return run

    measured = cases(options)
    seconds = timing.interleaved_medians(
        {case: runner(models[case[0]], case[2]) for case in measured},
        options["warmup"],
        options["repeats"],
    )
    rows = []
    for model_name, capacity, n in measured:
        params = sum(p.numel() for p in models[model_name].parameters())
        elapsed = seconds[(model_name, capacity, n)]
        rows.append(
            _row(
                options,
                "reference",
                "torch-" + torch.__version__,
                model_name,
                capacity,
                n,
                elapsed,
                params,
                "eager",
            )
        )
        timing.progress(
            f"  reference  {model_name:<10} N={n}: {options['batch'] / elapsed:9.1f} images/s"
        )
    return rows


def add_speedups(rows):
    """Sets each MIMOConv row's ``speedup_vs_n1`` (throughput over N = 1's); "" elsewhere."""
    base = {}
    for row in rows:
        if row["superposition"] == 1 and row["model"] == "MIMOConv":
            base[(row["implementation"], row["backend"])] = row["images_per_s"]
    for row in rows:
        reference = base.get((row["implementation"], row["backend"]))
        row["speedup_vs_n1"] = (
            round(row["images_per_s"] / reference, 3)
            if reference and row["model"] == "MIMOConv"
            else ""
        )
    return rows


def format_table(rows):
    """The table printed by ``keras-mimo bench``: one line per (implementation, backend, N)."""
    return timing.format_table(rows, TABLE)


def reference_ratios(rows):
    """Best keras-mimo throughput over reference throughput, per (model, N)."""
    ratios = {}
    for ref in (r for r in rows if r["implementation"] == "reference"):
        ours = [
            r
            for r in rows
            if r["implementation"] == "keras-mimo"
            and r["model"] == ref["model"]
            and r["superposition"] == ref["superposition"]
        ]
        if ours:
            best = max(ours, key=lambda r: r["images_per_s"])
            ratios[(ref["model"], ref["superposition"])] = (
                best["backend"],
                best["images_per_s"] / ref["images_per_s"],
            )
    return ratios


def _row(options, implementation, backend, model_name, capacity, n, seconds, params, compile_mode):
    return dict(
        implementation=implementation,
        backend=backend,
        model=model_name,
        depth=options["depth"],
        width=options["width"],
        initial_width=1 if model_name == "WideResNet" else options["initial_width"],
        capacity=capacity,
        superposition=n,
        batch=options["batch"],
        image_size=options["image_size"],
        compile=compile_mode,
        median_s=round(seconds, 5),
        images_per_s=round(options["batch"] / seconds, 1),
        params=params,
        **timing.machine_row(),
    )
