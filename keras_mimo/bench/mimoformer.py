"""Throughput of superposed attention and MIMOFormer on M x N grids (``--family mimoformer``).

Sequences per second at each grid, for the multi-head FAVOR+ attention layer alone ('att.'
core, projections included) and for whole MIMOFormer encoders with 'att.' and 'att.+MLP'
blocks. One model serves every grid, as in use; the cases take turns in every round.
Grid 1x1 is plain FAVOR+ (the Performer baseline with the same weights).

Only :func:`worker` imports Keras; :func:`check_options` checks a configuration without it.
"""

import sys

from keras_mimo.bench import timing
from keras_mimo.grids import format_grid

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
DEFAULT_BATCH = 64
HEADS = 2  # the embedding is split into two heads of half its width
TABLE = [
    ("backend", "backend", "<12"),
    ("model", "model", "<12"),
    ("attention", "attention", "<10"),
    ("grid", "grid", ">5"),
    ("batch", "batch", ">7"),
    ("seq/s", "sequences_per_s", ">10.1f"),
    ("x 1x1", "speedup_vs_1x1", ">8"),
    ("ms/batch", lambda row: 1000 * row["median_s"], ">10.1f"),
]


def check_options(options):
    """Raises a ValueError naming the option and its fix if ``options`` cannot be measured.

    ``options`` holds grids (list of ``(M, N)``), batch, seq_length, embedding_dim, num_layers,
    random_features, warmup and repeats. The batch must be a multiple of M * N at every grid
    (the attention layer alone does not pad) and the embedding even (two heads). Imports no
    Keras.

    Example:
        >>> check_options(dict(options_example(), grids=[(1, 1), (4, 4)], batch=6))
        Traceback (most recent call last):
        ...
        ValueError: --batch 6 must be a multiple of M * N = 16 for grid 4x4 (the attention \
layer alone does not pad), e.g. --batch 16.
    """
    for key in ("batch", "seq_length", "embedding_dim", "num_layers", "random_features"):
        if options[key] < 1:
            raise ValueError(f"--{key.replace('_', '-')} {options[key]} must be at least 1.")
    if options["repeats"] < 1:
        raise ValueError(f"--repeats {options['repeats']} must be at least 1.")
    if options["warmup"] < 0:
        raise ValueError(f"--warmup {options['warmup']} must be at least 0.")
    if options["embedding_dim"] % HEADS:
        raise ValueError(
            f"--embedding-dim {options['embedding_dim']} must be even: {HEADS} heads of half of "
            "it, e.g. 64."
        )
    if not options["grids"]:
        raise ValueError("--grids names no grid; give e.g. 1x1,2x2,4x4.")
    for m, n in options["grids"]:
        if options["batch"] % (m * n):
            raise ValueError(
                f"--batch {options['batch']} must be a multiple of M * N = {m * n} for grid "
                f"{m}x{n} (the attention layer alone does not pad), e.g. --batch "
                f"{_least_common_multiple([a * b for a, b in options['grids']])}."
            )


def options_example():
    """The options of ``keras-mimo bench --family mimoformer`` at its defaults."""
    return dict(
        grids=[(1, 1), (2, 2), (4, 4)],
        batch=DEFAULT_BATCH,
        seq_length=1024,
        embedding_dim=64,
        num_layers=2,
        random_features=256,
        warmup=2,
        repeats=5,
    )


def run(options, backends, output):
    """Measures every backend of ``backends`` and writes ``bench-mimoformer-STAMP.csv``/``.json``.

    ``options`` as :func:`check_options` takes them (checked here again); ``output`` is the
    results folder (columns ``FIELDS``). Prints the table to stdout and returns the rows.
    """
    check_options(options)
    print(
        f"Benchmark: MIMOFormer, {options['num_layers']} layers, width {options['embedding_dim']}, "
        f"R={options['random_features']}, batch {options['batch']} x {options['seq_length']} "
        "tokens",
        file=sys.stderr,
    )
    rows = []
    for backend in backends:
        rows += timing.run_worker("mimoformer", options, backend)
    print(format_table(rows))
    csv_path, json_path = timing.write_results(rows, output, FIELDS, prefix="bench-mimoformer")
    print(f"results: {csv_path} {json_path}")
    return rows


def format_table(rows):
    """The table printed by ``keras-mimo bench --family mimoformer``."""
    return timing.format_table(rows, TABLE)


def worker(options):
    """Measures on the backend named by KERAS_BACKEND; returns result rows."""
    import keras
    import numpy as np

    from keras_mimo.layers import MultiHeadFAVORAttention
    from keras_mimo.models import MIMOFormer

    grids = [tuple(g) for g in options["grids"]]
    capacity = (max(g[0] for g in grids), max(g[1] for g in grids))
    batch, length, width = options["batch"], options["seq_length"], options["embedding_dim"]
    heads, head_dim, features = HEADS, width // HEADS, options["random_features"]
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 20, size=(batch, length)).astype("int32")
    activations = rng.normal(size=(batch, length, width)).astype("float32")

    attention = MultiHeadFAVORAttention(
        heads, head_dim, attention="att", capacity=capacity, num_random_features=features, seed=0
    )
    attention.build((None, length, width))

    class AttentionAtGrid(keras.Model):
        """The shared attention layer at one fixed grid: each grid gets its compiled function."""

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
    seconds = timing.interleaved_medians(runs, options["warmup"], options["repeats"])

    backend = keras.backend.backend()
    compile_mode = {"jax": "jit", "torch": "eager"}.get(backend, "graph")
    rows = []
    for (name, kind, grid), elapsed in seconds.items():
        params = attention.count_params() if name == "attention" else models[kind].count_params()
        base = seconds[(name, kind, (1, 1))] if (name, kind, (1, 1)) in seconds else None
        row = timing.machine_row()
        row.update(
            implementation="keras-mimo",
            backend=backend,
            model=name,
            attention=kind,
            grid=format_grid(grid),
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
        timing.progress(
            f"  {backend:<10} {name:<10} {kind:<8} {format_grid(grid)}: "
            f"{batch / elapsed:9.1f} sequences/s"
        )
    return rows


def _least_common_multiple(values):
    result = 1
    for value in values:
        a, b = result, value
        while b:
            a, b = b, a % b
        result = result * value // a
    return result
