"""``keras-mimo presets``: the built-in presets as a table (dataset, capacity, accuracy per N,
parameters); ``--all`` adds the recipes listed without weights."""

from keras_mimo.presets.registry import builtin_presets, untrained_recipes


def add_arguments(parser):
    parser.add_argument(
        "--all", action="store_true", help="also list the recipes without weights (need a GPU)"
    )


def presets_table(include_untrained=False):
    """The table ``keras-mimo presets`` prints, from the registry (no preset is opened)."""
    rows = [("preset", "dataset", "capacity", "test accuracy % per N", "parameters")]
    for name, entry in sorted(builtin_presets().items()):
        summary = entry["summary"]
        accuracy = summary.get("accuracy", {})
        points = sorted(accuracy, key=lambda k: [int(p) for p in k.split("x")])
        rows.append(
            (
                name,
                summary.get("dataset") or "",
                str(summary.get("capacity")),
                ", ".join(f"{p}: {accuracy[p]:.2f}" for p in points),
                f"{summary.get('parameter_count', 0):,}",
            )
        )
    if include_untrained:
        from keras_mimo.training.recipes import get_recipe

        for name in untrained_recipes():
            rows.append((name, get_recipe(name).dataset, "", "no weights (train on a GPU)", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args):
    print(presets_table(args.all))
    return 0
