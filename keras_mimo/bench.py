"""Inference throughput of WideResNet and MIMOConv at N = 1, 2, 4 (``keras-mimo bench``).

Each backend (and the optional reference PyTorch implementation) is measured in its own
process, so thread pools and memory never mix. Throughput is images per second from the
median of ``repeats`` timed calls after ``warmup`` untimed ones, on one fixed batch. One
MIMOConv serves every N (as in use), and the cases take turns in every round.
"""

import argparse
import csv
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")
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


def interleaved_medians(runs, warmup, repeats):
    """Median wall time of each ``runs[name]()`` over ``repeats`` rounds after ``warmup`` rounds.

    The cases take turns inside every round, so a slow spell of the machine hits all of
    them alike and the ratios between them stay fair. Each run must block until done.
    """
    for _ in range(warmup):
        for run in runs.values():
            run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _cases(options):
    """(model name, capacity, superposition) rows measured for each implementation."""
    rows = [("WideResNet", 1, 1)] if "wrn" in options["models"] else []
    if "mimoconv" in options["models"]:
        rows += [
            ("MIMOConv", options["capacity"], n)
            for n in options["superpositions"]
            if options["capacity"] % n == 0
        ]
    return rows


def machine_row():
    """The fields every result row carries about where and when it was measured."""
    return dict(
        threads=os.cpu_count(),
        cpu=platform.processor() or platform.machine(),
        timestamp=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


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
        **machine_row(),
    )


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

    cases = _cases(options)
    seconds = interleaved_medians(
        {case: runner(models[case[0]], case[2]) for case in cases},
        options["warmup"],
        options["repeats"],
    )
    rows = []
    for model_name, capacity, n in cases:
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
        print(
            f"  {backend:<10} {model_name:<10} N={n}: {options['batch'] / elapsed:9.1f} images/s",
            file=sys.stderr,
            flush=True,
        )
    return rows


def reference_source(path):
    """The folder holding the reference's superposition.py, from a checkout root or from MIMOConv/src itself."""
    source = pathlib.Path(path).expanduser()
    for candidate in (source / "MIMOConv" / "src", source):
        if (candidate / "superposition.py").exists():
            return candidate
    raise SystemExit(
        f"keras-mimo bench: --reference {source} holds no MIMOConv/src/superposition.py; point it at a checkout of "
        "github.com/IBM/multiple-input-multiple-output-nets."
    )


def reference_worker(options):
    """Measures the reference PyTorch implementation (eval mode, no_grad) at the same configurations."""
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

    cases = _cases(options)
    seconds = interleaved_medians(
        {case: runner(models[case[0]], case[2]) for case in cases},
        options["warmup"],
        options["repeats"],
    )
    rows = []
    for model_name, capacity, n in cases:
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
        print(
            f"  reference  {model_name:<10} N={n}: {options['batch'] / elapsed:9.1f} images/s",
            file=sys.stderr,
            flush=True,
        )
    return rows


def run_worker(kind, options, backend=None):
    env = dict(os.environ)
    if backend:
        env["KERAS_BACKEND"] = backend
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    command = [sys.executable, "-m", "keras_mimo.bench", "--worker", kind, json.dumps(options)]
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"benchmark worker {kind} ({backend or 'reference'}) failed with exit code {done.returncode}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _add_speedups(rows):
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
    header = f"{'implementation':<15}{'backend':<18}{'model':<11}{'N':>3}{'batch':>7}{'images/s':>11}{'x N=1':>8}{'ms/batch':>10}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['implementation']:<15}{r['backend']:<18}{r['model']:<11}{r['superposition']:>3}{r['batch']:>7}"
            f"{r['images_per_s']:>11.1f}{str(r['speedup_vs_n1']):>8}{1000 * r['median_s']:>10.1f}"
        )
    return "\n".join(lines)


def write_results(rows, output, fields=FIELDS, prefix="bench"):
    """Writes ``rows`` as CSV and JSON next to each other; each file appears whole or not at all."""
    output = pathlib.Path(output)
    output.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    csv_path, json_path = output / f"{prefix}-{stamp}.csv", output / f"{prefix}-{stamp}.json"
    for path, write in ((csv_path, _write_csv), (json_path, _write_json)):
        partial = path.with_suffix(path.suffix + ".partial")
        write(partial, rows, fields)
        os.replace(partial, path)  # never leave a half-written result file
    return csv_path, json_path


def _write_csv(path, rows, fields):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _write_json(path, rows, fields):
    path.write_text(
        json.dumps([{key: row[key] for key in fields} for row in rows], indent=1) + "\n"
    )


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


def add_arguments(parser):
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
        help="comma-separated Keras backends to measure (tensorflow,jax,torch), 'all', or 'active' (KERAS_BACKEND)",
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
        help="XLA / jit: auto = Keras' default for the backend (TF on CPU: off; JAX: jit; torch: eager)",
    )
    parser.add_argument(
        "--reference",
        default=None,
        help="path to a checkout of IBM/multiple-input-multiple-output-nets: also time it (needs torch)",
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


def selected_backends(text):
    if text == "active":
        backends = [os.environ.get("KERAS_BACKEND", "tensorflow")]
    elif text == "all":
        backends = list(BACKENDS)
    else:
        backends = text.split(",")
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise SystemExit(
            f"keras-mimo bench: unknown backend(s) {unknown}; use {', '.join(BACKENDS)} or all."
        )
    return backends


def run(args):
    backends = selected_backends(args.backends)
    if args.family == "mimoformer":
        from keras_mimo import bench_mimoformer

        return bench_mimoformer.run(args, backends)
    options = dict(
        depth=args.depth,
        width=args.width,
        initial_width=args.initial_width,
        capacity=args.capacity,
        superpositions=[int(n) for n in args.superpositions.split(",")],
        models=args.models.split(","),
        batch=args.batch or 256,
        image_size=args.image_size,
        warmup=args.warmup,
        repeats=args.repeats,
        jit_compile=args.jit_compile,
        reference=args.reference,
    )
    _check_options(options)
    if options["reference"]:
        reference_source(options["reference"])
    print(
        f"Benchmark: WRN-{options['depth']}-{options['width']} body, batch {options['batch']}, "
        f"{options['image_size']}x{options['image_size']}x3, {os.cpu_count()} CPU threads",
        file=sys.stderr,
    )
    rows = []
    for backend in backends:
        rows += run_worker("keras", options, backend)
    if options["reference"]:
        rows += run_worker("reference", options)
    rows = _add_speedups(rows)
    print(format_table(rows))
    for (model, n), (backend, ratio) in sorted(reference_ratios(rows).items()):
        print(f"keras-mimo ({backend}) / reference, {model} N={n}: {ratio:.2f}x")
    csv_path, json_path = write_results(rows, args.output)
    print(f"results: {csv_path} {json_path}")
    return rows


def _check_options(options):
    if options["depth"] < 10 or (options["depth"] - 4) % 6:
        raise SystemExit(
            f"keras-mimo bench: --depth {options['depth']} must be 6k + 4 (10, 16, 22, 28)."
        )
    bad = [n for n in options["superpositions"] if n < 1 or options["capacity"] % n]
    if bad:
        raise SystemExit(
            f"keras-mimo bench: --superpositions {bad} must divide --capacity {options['capacity']}."
        )
    for key in ("width", "initial_width", "batch", "image_size", "repeats", "capacity"):
        if options[key] < 1:
            raise SystemExit(f"keras-mimo bench: --{key.replace('_', '-')} must be at least 1.")
    unknown = set(options["models"]) - {"wrn", "mimoconv"}
    if unknown:
        raise SystemExit(
            f"keras-mimo bench: unknown --models {sorted(unknown)}; use wrn and/or mimoconv."
        )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        if sys.argv[2] == "mimoformer":
            from keras_mimo.bench_mimoformer import worker
        else:
            worker = {"keras": keras_worker, "reference": reference_worker}[sys.argv[2]]
        print(json.dumps(worker(json.loads(sys.argv[3]))))
    else:
        parser = argparse.ArgumentParser(prog="python -m keras_mimo.bench")
        add_arguments(parser)
        run(parser.parse_args())
