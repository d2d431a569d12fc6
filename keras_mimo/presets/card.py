"""Model cards: a preset's ``README.md``, written from its metadata."""


def _accuracy_rows(metadata):
    full = metadata.get("accuracy") or {}
    bundled = metadata.get("accuracy_bundled") or {}
    throughput = (metadata.get("throughput") or {}).get("per_n") or {}
    rows = []
    for key in sorted(set(full) | set(bundled) | set(throughput), key=_operating_point_order):
        rows.append(
            f"| {key} | {_percent(full.get(key))} | {_percent(bundled.get(key))} | "
            f"{_rate(throughput.get(key))} |"
        )
    return rows


def _operating_point_order(key):
    parts = str(key).split("x")
    return tuple(int(p) for p in parts if p.isdigit())


def _percent(value):
    return "" if value is None else f"{value:.2f}"


def _rate(value):
    return "" if value is None else f"{value:,.0f}"


def model_card(name, metadata):
    """Markdown model card of preset ``name`` from its ``metadata`` dict."""
    lines = [f"# {name}", ""]
    if metadata.get("description"):
        lines += [metadata["description"], ""]
    facts = [
        ("class", metadata.get("class_name")),
        ("architecture", metadata.get("architecture")),
        ("recipe", metadata.get("recipe")),
        ("dataset", metadata.get("dataset")),
        ("data licence", metadata.get("data_license")),
        ("capacity", metadata.get("capacity")),
        (
            "parameters",
            f"{metadata['parameter_count']:,}" if "parameter_count" in metadata else None,
        ),
        (
            "input",
            "{} {}".format(metadata["input"]["dtype"], tuple(metadata["input"]["shape"]))
            if "input" in metadata
            else None,
        ),
        ("preprocessing", metadata.get("preprocessing")),
        ("weights licence", metadata.get("license")),
        ("keras-mimo", metadata.get("keras_mimo_version")),
    ]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in facts if value not in (None, "")]
    lines.append("")
    rows = _accuracy_rows(metadata)
    if rows:
        throughput = metadata.get("throughput") or {}
        lines += [
            "## Accuracy and throughput",
            "",
            "| N | test accuracy (%) | bundled subset (%) | images/s |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
        if metadata.get("test_split"):
            lines.append(f"Test accuracy: {metadata['test_split']}.")
        if metadata.get("bundled_subset"):
            lines.append(f"Bundled subset: {metadata['bundled_subset']}.")
        if throughput.get("setting"):
            lines.append(f"Throughput: {throughput['setting']}.")
        lines.append("")
    commands = [
        ("Train", metadata.get("train_command")),
        ("Evaluate", metadata.get("eval_command")),
        ("Throughput", (metadata.get("throughput") or {}).get("command")),
    ]
    commands = [(what, command) for what, command in commands if command]
    if commands:
        lines += ["## Reproduce", "", "```bash"]
        lines += [f"# {what}\n{command}" for what, command in commands]
        lines += ["```", ""]
    lines += [
        "## Use",
        "",
        "```python",
        "import keras_mimo",
        f'model = keras_mimo.from_preset("{name}")',
        "logits = model.predict(examples)  # raw examples as the dataset ships them",
        "model.superposition = 1  # any N that divides the capacity",
        "```",
        "",
    ]
    return "\n".join(lines)
