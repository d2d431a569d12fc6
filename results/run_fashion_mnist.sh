#!/usr/bin/env bash
# Fashion-MNIST acceptance runs (real data: Debian package dataset-fashion-mnist, found without configuration).
# Usage: EPOCHS=1 BACKEND=tensorflow [MIXUP=alpha] [OUT=folder] bash results/run_fashion_mnist.sh [recipe ...]
# MIXUP unset keeps the recipe's mixup (alpha 1.0); MIXUP=0 turns it off.
# Each run writes runs/fashion_mnist/<recipe>/ (log.csv, results.json, best/last.keras, tensorboard/);
# rerunning resumes. python results/collect.py fashion_mnist $OUT turns the results.json files into results/fashion_mnist.csv.
set -u
EPOCHS=${EPOCHS:-1}
BACKEND=${BACKEND:-tensorflow}
OUT=${OUT:-runs/fashion_mnist}
extra=()
[ -z "${MIXUP:-}" ] || extra=(--mixup-alpha "$MIXUP")
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=(fashion_mnist-wrn-10 fashion_mnist-mimonet-10-n1 fashion_mnist-mimonet-10-n2 \
                                    fashion_mnist-mimonet-10-n4 fashion_mnist-mimonet-10-dynamic)
mkdir -p "$OUT"
for recipe in "${recipes[@]}"; do
  echo "=== $recipe: $(date -u +%FT%TZ) ==="
  KERAS_BACKEND=$BACKEND TF_CPP_MIN_LOG_LEVEL=3 python -m keras_mimo.cli train --config "$recipe" --epochs "$EPOCHS" "${extra[@]}" \
    --output "$OUT/$recipe" --verbose 2 --no-tensorboard > "$OUT/$recipe.log" 2>&1
  echo "=== $recipe: exit $? $(date -u +%FT%TZ) ==="
done
