"""Throughput of superposed linear attention and MIMOFormer on M x N grids (``keras-mimo bench --family mimoformer``).

Sequences per second at each grid, for the multi-head FAVOR+ attention layer alone ('att.'
core, projections included) and for whole MIMOFormer encoders with 'att.' and 'att.+MLP'
blocks. One model serves every grid, as in use; the cases take turns in every round.
Grid 1x1 is plain FAVOR+ (the Performer baseline with the same weights).
"""

import sys

from keras_mimo import bench

FIELDS = [
    "implementation",
    "backend",
    "model",
    "attention",
    "grid",
    "batch",
    "seq_length",
    "embedding_dim",
    "num_layers",
    "random_features",
    "compile",
    "median_s",
    "sequences_per_s",
    "speedup_vs_1x1",
    "params",
    "threads",
    "cpu",
    "timestamp",
]


def parse_grids(text):
    """ "1x1,2x2,4x4" -> [(1, 1), (2, 2), (4, 4)]."""
    grids = []
    for item in text.split(","):
        parts = item.lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise SystemExit(
                f"keras-mimo bench: --grids item {item!r} must look like MxN, e.g. 2x2."
            )
        grids.append((int(parts[0]), int(parts[1])))
    return grids


def check_options(options):
    for grid in options["grids"]:
        if options["batch"] % (grid[0] * grid[1]):
            raise SystemExit(
                f"keras-mimo bench: --batch {options['batch']} must be a multiple of M * N for grid "
                f"{grid[0]}x{grid[1]} (the attention layer alone does not pad)."
            )
    for key in ("batch", "seq_length", "embedding_dim", "num_layers", "repeats"):
        if options[key] < 1:
            raise SystemExit(f"keras-mimo bench: --{key.replace('_', '-')} must be at least 1.")


def worker(options):
    """Measures on the backend named by KERAS_BACKEND; returns result rows."""
    import keras
    import numpy as np

    from keras_mimo.layers import MultiHeadFAVORAttention
    from keras_mimo.models import MIMOFormer

    grids = [tuple(g) for g in options["grids"]]
    capacity = (max(g[0] for g in grids), max(g[1] for g in grids))
    batch, length, width = options["batch"], options["seq_length"], options["embedding_dim"]
    heads, head_dim, features = 2, width // 2, options["random_features"]
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 20, size=(batch, length)).astype("int32")
    activations = rng.normal(size=(batch, length, width)).astype("float32")

    attention = MultiHeadFAVORAttention(
        heads, head_dim, attention="att", capacity=capacity, num_random_features=features, seed=0
    )
    attention.build((None, length, width))

    class AttentionAtGrid(keras.Model):
        """The shared attention layer at one fixed grid, so each grid gets its own compiled function."""

        def __init__(self, grid):
            super().__init__()
            self.attention, self.grid = attention, grid

        def call(self, x):
            return self.attention(x, grid=self.grid)

    probes = {grid: AttentionAtGrid(grid) for grid in grids}
    models = {
        kind: MIMOFormer(
            vocab_size=20,
            max_length=length,
            num_classes=10,
            embedding_dim=width,
            hidden_dim=2 * width,
            num_heads=heads,
            head_dim=head_dim,
            num_layers=options["num_layers"],
            attention=kind,
            capacity=capacity,
            num_random_features=features,
            dropout=0.0,
            seed=0,
        )
        for kind in ("att", "att+mlp")
    }

    def attention_run(grid):
        return lambda: keras.ops.convert_to_numpy(probes[grid].predict_on_batch(activations))

    def model_run(model, grid):
        def run():
            model.grid = grid
            keras.ops.convert_to_numpy(model.predict_on_batch(tokens))

        return run

    runs = {}
    for grid in grids:
        runs[("attention", "att", grid)] = attention_run(grid)
        for kind, model in models.items():
            runs[("MIMOFormer", kind, grid)] = model_run(model, grid)
    seconds = bench.interleaved_medians(runs, options["warmup"], options["repeats"])

    backend = keras.backend.backend()
    compile_mode = {"jax": "jit", "torch": "eager"}.get(backend, "graph")
    rows = []
    for (name, kind, grid), elapsed in seconds.items():
        params = attention.count_params() if name == "attention" else models[kind].count_params()
        base = seconds[(name, kind, (1, 1))] if (name, kind, (1, 1)) in seconds else None
        row = bench.machine_row()
        row.update(
            implementation="keras-mimo",
            backend=backend,
            model=name,
            attention=kind,
            grid=f"{grid[0]}x{grid[1]}",
            batch=batch,
            seq_length=length,
            embedding_dim=width,
            num_layers=options["num_layers"],
            random_features=features,
            compile=compile_mode,
            median_s=round(elapsed, 5),
            sequences_per_s=round(batch / elapsed, 1),
            speedup_vs_1x1=round(base / elapsed, 3) if base else "",
            params=params,
        )
        rows.append(row)
        print(
            f"  {backend:<10} {name:<10} {kind:<8} {grid[0]}x{grid[1]}: {batch / elapsed:9.1f} sequences/s",
            file=sys.stderr,
            flush=True,
        )
    return rows


def format_table(rows):
    header = f"{'backend':<12}{'model':<12}{'attention':<10}{'grid':>5}{'batch':>7}{'seq/s':>10}{'x 1x1':>8}{'ms/batch':>10}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['backend']:<12}{r['model']:<12}{r['attention']:<10}{r['grid']:>5}{r['batch']:>7}"
            f"{r['sequences_per_s']:>10.1f}{str(r['speedup_vs_1x1']):>8}{1000 * r['median_s']:>10.1f}"
        )
    return "\n".join(lines)


def run(args, backends):
    options = dict(
        grids=parse_grids(args.grids),
        batch=args.batch or 64,
        seq_length=args.seq_length,
        embedding_dim=args.embedding_dim,
        num_layers=args.num_layers,
        random_features=args.random_features,
        warmup=args.warmup,
        repeats=args.repeats,
    )
    check_options(options)
    print(
        f"Benchmark: MIMOFormer, {options['num_layers']} layers, width {options['embedding_dim']}, "
        f"R={options['random_features']}, batch {options['batch']} x {options['seq_length']} tokens",
        file=sys.stderr,
    )
    rows = []
    for backend in backends:
        rows += bench.run_worker("mimoformer", options, backend)
    print(format_table(rows))
    csv_path, json_path = bench.write_results(rows, args.output, FIELDS, prefix="bench-mimoformer")
    print(f"results: {csv_path} {json_path}")
    return rows
