"""What both benchmark families share: interleaved timing, worker processes, result files, tables.

Nothing here imports Keras: the workers (``python -m keras_mimo.bench --worker ...``) do, each
in its own process, so thread pools and memory never mix between backends.
"""

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


def interleaved_medians(runs, warmup, repeats):
    """Median wall time in seconds of each ``runs[name]()`` over ``repeats`` rounds.

    ``warmup`` untimed rounds come first. The cases take turns inside every round, so a slow
    spell of the machine hits all of them alike and the ratios between them stay fair. Each
    run must block until its work is done. Returns ``{name: seconds}`` in the order of ``runs``.

    Example:
        >>> seconds = interleaved_medians({"noop": lambda: None}, warmup=1, repeats=3)
        >>> list(seconds)
        ['noop']
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


def block_medians(runs, repeats, block=3):
    """Median wall time in seconds of each ``runs[name]()``, timed in blocks that take turns.

    In each of ``repeats`` rounds every case runs once untimed and then ``block`` timed times in
    a row: steady-state calls, as a user serving one configuration makes them (alternating
    cases call by call times caches the other cases left cold), while the rounds still spread
    a slow spell of the machine over all cases. Returns ``{name: seconds}`` in ``runs`` order.

    Example:
        >>> seconds = block_medians({"noop": lambda: None}, repeats=2)
        >>> list(seconds)
        ['noop']
    """
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            run()
            for _ in range(block):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def machine_row():
    """The fields every result row carries about where and when it was measured.

    ``threads`` (CPU count), ``cpu`` (processor name, else machine type) and ``timestamp``
    (UTC, ISO 8601 to the second).
    """
    return dict(
        threads=os.cpu_count(),
        cpu=platform.processor() or platform.machine(),
        timestamp=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def selected_backends(text):
    """The backends named by ``--backends``: a comma-separated list, ``all`` or ``active``.

    ``active`` is KERAS_BACKEND (default tensorflow). A ValueError names unknown backends.

    Example:
        >>> selected_backends("jax,torch")
        ['jax', 'torch']
    """
    if text == "active":
        backends = [os.environ.get("KERAS_BACKEND", "tensorflow")]
    elif text == "all":
        backends = list(BACKENDS)
    else:
        backends = [backend.strip() for backend in text.split(",")]
    unknown = [backend for backend in backends if backend not in BACKENDS]
    if unknown:
        raise ValueError(
            f"--backends {text!r}: unknown backend(s) {unknown}; use a comma-separated list of "
            f"{', '.join(BACKENDS)}, or all, or active (KERAS_BACKEND)."
        )
    return backends


def run_worker(kind, options, backend=None):
    """Runs the worker ``kind`` in a fresh Python process and returns its result rows.

    ``kind`` is ``keras``, ``reference`` or ``mimoformer``; ``options`` (JSON-serialisable)
    configure it; ``backend``, when given, becomes the worker's KERAS_BACKEND. The worker's
    progress lines go to stderr as they come; a worker that fails raises a RuntimeError.
    """
    env = dict(os.environ)
    if backend:
        env["KERAS_BACKEND"] = backend
    command = [sys.executable, "-m", "keras_mimo.bench", "--worker", kind, json.dumps(options)]
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError(
            f"benchmark worker {kind} ({backend or 'reference'}) failed with exit code "
            f"{done.returncode}; its messages are above."
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_results(rows, output, fields, prefix="bench"):
    """Writes ``rows`` as ``PREFIX-STAMP.csv`` and ``PREFIX-STAMP.json`` into the folder ``output``.

    Both files hold the columns ``fields`` in that order; each appears whole or not at all
    (written under a ``.partial`` name first). Returns ``(csv_path, json_path)``.
    """
    output = pathlib.Path(output)
    output.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    csv_path, json_path = output / f"{prefix}-{stamp}.csv", output / f"{prefix}-{stamp}.json"
    for path, write in ((csv_path, _write_csv), (json_path, _write_json)):
        partial = path.with_suffix(path.suffix + ".partial")
        write(partial, rows, fields)
        os.replace(partial, path)  # never leave a half-written result file
    return csv_path, json_path


def format_table(rows, columns):
    """A text table of ``rows``: ``columns`` is a list of ``(title, key, format spec)``.

    ``key`` is a row key or a function of the row (for derived columns); the spec holds the
    alignment and width, e.g. ``"<15"`` or ``">11.1f"``. A header line and a rule of dashes
    come first.

    Example:
        >>> print(format_table([{"n": 2, "v": 1.5}], [("N", "n", ">3"), ("value", "v", ">8.2f")]))
          N   value
        -----------
          2    1.50
    """
    header = "".join(f"{title:{_width_only(spec)}}" for title, _, spec in columns)
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append("".join(f"{_cell(row, key):{spec}}" for _, key, spec in columns))
    return "\n".join(lines)


def progress(line):
    """Writes one progress line of a worker to stderr, at once."""
    print(line, file=sys.stderr, flush=True)


def _cell(row, key):
    return key(row) if callable(key) else row[key]


def _width_only(spec):
    """``">11.1f"`` -> ``">11"``: the alignment and width of a column, for its title."""
    digits = "".join(ch for ch in spec.split(".")[0] if ch.isdigit())
    return spec[0] + digits if spec[:1] in "<>^" else digits


def _write_csv(path, rows, fields):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _write_json(path, rows, fields):
    path.write_text(
        json.dumps([{key: row[key] for key in fields} for row in rows], indent=1) + "\n"
    )
