#!/usr/bin/env bash
# Fashion-MNIST acceptance runs (real data: Debian package dataset-fashion-mnist, found without
# configuration).
# Usage: EPOCHS=1 BACKEND=tensorflow [MIXUP=alpha] [BATCH=superpositions] [LR=peak] [OUT=folder] \
#        [PARALLEL=1] [FLAGS="more keras-mimo train flags"] bash docs/results/run_fashion_mnist.sh \
#        [recipe ...]
# MIXUP, BATCH, LR unset keep the recipe's values (mixup alpha 1.0, 128 superpositions per batch,
# lr 0.2); MIXUP=0 turns mixup off. FLAGS is split on spaces and passed on, e.g.
# FLAGS="--mixed-precision bfloat16 --isometry-every 4 --model-override stem_stride=2".
# PARALLEL=1 starts every recipe at once (give each one thread:
# TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1), else they run one after another.
# Each run writes $OUT/<recipe>/ (log.csv, results.json, best/last.keras, tensorboard/); rerunning
# resumes. python docs/results/collect.py fashion_mnist $OUT [STUDY] adds the results.json files
# to docs/results/fashion_mnist.csv.
set -u
EPOCHS=${EPOCHS:-1}
BACKEND=${BACKEND:-tensorflow}
OUT=${OUT:-runs/fashion_mnist}
extra=()
PARALLEL=${PARALLEL:-0}
[ -z "${MIXUP:-}" ] || extra+=(--mixup-alpha "$MIXUP")
[ -z "${BATCH:-}" ] || extra+=(--batch-size "$BATCH")
[ -z "${LR:-}" ] || extra+=(--lr "$LR")
if [ -n "${FLAGS:-}" ]; then read -r -a more <<< "$FLAGS"; extra+=("${more[@]}"); fi
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=(wrn-10-2.fashion-mnist mimoconv-10-2.fashion-mnist-n1 \
                                    mimoconv-10-2.fashion-mnist-n2 mimoconv-10-2.fashion-mnist-n4 \
                                    mimoconv-10-2.fashion-mnist-dynamic)
mkdir -p "$OUT"
run() {
  local recipe=$1
  echo "=== $recipe: $(date -u +%FT%TZ) ==="
  KERAS_BACKEND=$BACKEND TF_CPP_MIN_LOG_LEVEL=3 python -m keras_mimo.cli train --recipe "$recipe" \
    --epochs "$EPOCHS" "${extra[@]}" --output "$OUT/$recipe" --verbose 2 --no-tensorboard \
    > "$OUT/$recipe.log" 2>&1
  echo "=== $recipe: exit $? $(date -u +%FT%TZ) ==="
}
for recipe in "${recipes[@]}"; do
  if [ "$PARALLEL" = 1 ]; then run "$recipe" & else run "$recipe"; fi
done
wait
