"""Collects runs/fashion_mnist/*/results.json into results/fashion_mnist.csv (one row per model and N)."""
import csv
import json
import pathlib
import sys

runs = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "runs/fashion_mnist")
rows = []
for path in sorted(runs.glob("*/results.json")):
    result = json.loads(path.read_text())
    config = json.loads((path.parent / "config.json").read_text())
    for n, accuracy in result["accuracy"].items():
        rows.append(dict(
            recipe=result["recipe"], model=config["model"], model_overrides=json.dumps(config["model_overrides"]),
            trained_as="dynamic p=%s" % config["dynamic_p"] if config["dynamic_p"] else "fixed",
            eval_n=n, test_accuracy=round(100 * accuracy, 2), test_loss=round(result["loss"][n], 4),
            epochs=result["epochs"], batch_superpositions=config["batch_size"], lr=config["lr"],
            mixup_alpha=config["mixup_alpha"], train_time_s=result["train_time_s"],
            command=f"keras-mimo train --config {result['recipe']} --epochs {config['epochs']} --output {path.parent}",
        ))
out = pathlib.Path(__file__).parent / "fashion_mnist.csv"
with open(out, "w", newline="") as stream:
    writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
print(out.read_text())
