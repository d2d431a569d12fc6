"""``keras-mimo demo``: a pretrained MIMOConv classifying real test images in superposition.

Loads a preset (default: the dynamic Fashion-MNIST model, capacity 4) and the WideResNet of the
same body as the reference, classifies the test images bundled in ``zoo/data`` at every N the
preset serves, and reports accuracy, images/s and the speed-up over the WideResNet; writes the
accuracy-versus-throughput plot (PNG) and the table (CSV, JSON). ``images=`` classifies a folder
of the user's own PNG/JPEG files at each N instead. Offline: everything it reads is in the zoo.
"""

import csv
import json
import os

DEFAULT_PRESET = "mimoconv-10-2.fashion-mnist-dynamic"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def run_demo(
    preset=DEFAULT_PRESET,
    output="demo-output",
    images=None,
    batch_size=None,
    repeats=None,
    small=False,
    echo=print,
):
    """Runs the demo; returns ``{"rows": [...], "files": [...]}`` (``"predictions"`` with
    ``images``). ``small=True`` scores 1000 images with fewer timing rounds (tests)."""
    from keras_mimo.presets.api import from_preset, preset_metadata
    from keras_mimo.presets.zoo import (
        THROUGHPUT_BATCH,
        THROUGHPUT_REPEATS,
        accuracy_per_point,
        operating_points,
        throughput_per_point,
    )

    metadata = preset_metadata(preset)
    model = from_preset(preset, compile=False)
    points = operating_points(model)
    if images is not None:
        return {"predictions": classify_folder(model, metadata, images, points, echo)}

    from keras_mimo.presets.bundled import describe_bundled, load_bundled

    examples, labels = load_bundled(metadata["dataset"], **metadata.get("data_options", {}))
    batch_size = min(batch_size or (500 if small else THROUGHPUT_BATCH), len(labels))
    repeats = repeats or (2 if small else THROUGHPUT_REPEATS)
    if small:
        examples, labels = examples[:1000], labels[:1000]
    echo(f"{preset}: {metadata.get('description', '')}")
    echo(f"Scoring {len(labels)} of {describe_bundled(metadata['dataset'])}.")
    accuracy = accuracy_per_point(model, examples, labels, points)
    cases = [(f"N = {p}", model, p) for p in points]
    baseline_name = metadata.get("baseline")
    baseline = None
    if baseline_name:
        baseline = from_preset(baseline_name, compile=False)
        baseline_accuracy = accuracy_per_point(baseline, examples, labels, [1])["1"]
        cases.append((baseline_name, baseline, 1))
    rates = throughput_per_point(cases, examples, batch_size=batch_size, repeats=repeats)

    rows = []
    reference = rates.get(baseline_name) if baseline is not None else None
    for point in points:
        rate = rates[f"N = {point}"]
        rows.append(
            dict(
                model=preset,
                n=point,
                accuracy=accuracy[str(point)],
                test_accuracy=metadata.get("accuracy", {}).get(str(point)),
                images_per_second=rate,
                speedup=round(rate / reference, 2) if reference else None,
            )
        )
    if baseline is not None:
        rows.append(
            dict(
                model=baseline_name,
                n=1,
                accuracy=baseline_accuracy,
                test_accuracy=preset_metadata(baseline_name).get("accuracy", {}).get("1"),
                images_per_second=reference,
                speedup=1.0,
            )
        )
    echo(format_table(rows, baseline_name))
    files = write_outputs(rows, output, preset, baseline_name, len(labels), echo)
    return {"rows": rows, "files": files}


def format_table(rows, baseline_name):
    header = ("model", "N", "accuracy %", "full test %", "images/s", "speed-up")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row["model"],
                str(row["n"]),
                f"{row['accuracy']:.2f}",
                "" if row["test_accuracy"] is None else f"{row['test_accuracy']:.2f}",
                f"{row['images_per_second']:,.0f}",
                "" if row["speedup"] is None else f"x{row['speedup']:.2f}",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths))
        )
        for line in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    if baseline_name:
        text.append(f"speed-up: images/s over {baseline_name}, the WideResNet of the same body.")
    return "\n".join(text)


def write_outputs(rows, output, preset, baseline_name, count, echo):
    os.makedirs(output, exist_ok=True)
    files = []
    csv_path = os.path.join(output, "demo.csv")
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    files.append(csv_path)
    json_path = os.path.join(output, "demo.json")
    with open(json_path, "w", encoding="utf-8") as handle:
        json.dump(
            {"preset": preset, "baseline": baseline_name, "images": count, "rows": rows},
            handle,
            indent=2,
        )
    files.append(json_path)
    try:
        plot_path = plot_tradeoff(
            rows, os.path.join(output, "accuracy_vs_throughput.png"), preset, count
        )
    except ImportError:
        echo("The plot needs matplotlib: pip install matplotlib (or keras-mimo[plot]).")
    else:
        files.append(plot_path)
    echo("Wrote " + ", ".join(files))
    return files


def plot_tradeoff(rows, path, preset, count):
    """Accuracy against images/s, one point per N and the baseline as a star; writes a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4.2), dpi=120)
    ours = [row for row in rows if row["model"] == preset]
    axes.plot(
        [r["images_per_second"] for r in ours], [r["accuracy"] for r in ours], "o-", label=preset
    )
    for row in ours:
        axes.annotate(
            f"N = {row['n']}",
            (row["images_per_second"], row["accuracy"]),
            textcoords="offset points",
            xytext=(6, 6),
        )
    for row in rows:
        if row["model"] != preset:
            axes.plot(
                row["images_per_second"],
                row["accuracy"],
                "*",
                markersize=14,
                label=f"{row['model']} (baseline)",
            )
    axes.set_xlabel("images / s (inference, CPU)")
    axes.set_ylabel(f"accuracy on {count} test images (%)")
    axes.set_title("Accuracy against throughput in superposition")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def load_image_folder(folder, raw_shape):
    """``(file names, uint8 images of raw_shape)`` of the PNG/JPEG files in ``folder``, converted
    to the preset's channels and size."""
    import numpy as np
    from PIL import Image

    if not os.path.isdir(folder):
        raise NotADirectoryError(f"--images {folder}: not a directory of PNG/JPEG files.")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_SUFFIXES))
    if not names:
        raise ValueError(f"--images {folder}: no .png, .jpg or .jpeg files in it.")
    height, width, channels = raw_shape
    arrays = []
    for name in names:
        with Image.open(os.path.join(folder, name)) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((width, height))
            arrays.append(np.asarray(image, dtype=np.uint8).reshape(height, width, channels))
    return names, np.stack(arrays)


def classify_folder(model, metadata, folder, points, echo=print):
    """Predicted class name per file at each N; prints one line per file."""
    import numpy as np

    from keras_mimo.presets.zoo import set_operating_point

    names, images = load_image_folder(folder, tuple(metadata["input"]["shape"]))
    classes = metadata.get("class_names") or [str(i) for i in range(model.num_classes)]
    predictions = {}
    for point in points:
        set_operating_point(model, point)
        predictions[point] = np.argmax(model.predict(images, verbose=0), -1)
    result = []
    for index, name in enumerate(names):
        per_point = {str(p): classes[int(predictions[p][index])] for p in points}
        result.append({"file": name, **per_point})
        echo(f"{name}: " + ", ".join(f"N = {p}: {c}" for p, c in per_point.items()))
    return result
