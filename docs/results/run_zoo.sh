#!/usr/bin/env bash
# Trains the zoo's presets on the 2-core CPU machine, two at a time on one thread each, then
# exports each finished run into zoo/ (keras-mimo export-preset). Rerunning resumes unfinished
# runs and re-exports finished ones. Each preset's exact command is also in its metadata.json.
# Usage: bash docs/results/run_zoo.sh [fashion-mnist|mnist|listops|all]   (default all)
set -u
export KERAS_BACKEND=${KERAS_BACKEND:-tensorflow} TF_CPP_MIN_LOG_LEVEL=3
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
CPU="--batch-size 64 --lr 0.2 --mixup-alpha 0 --mixed-precision bfloat16 --model-override stem_stride=2"
MIMO="--isometry-every 4"
R=mimoconv-10-2.fashion-mnist
train() {  # recipe epochs flags...
  local recipe=$1 epochs=$2; shift 2
  keras-mimo train --recipe "$recipe" --epochs "$epochs" $CPU "$@" --verbose 2 --no-tensorboard \
    --output "runs/zoo/$recipe" > "runs/zoo/$recipe.log" 2>&1
}
export_run() {  # recipe [baseline]
  local baseline=()
  [ -n "${2:-}" ] && baseline=(--baseline "$2")
  keras-mimo export-preset "runs/zoo/$1" "${baseline[@]}"
}
mkdir -p runs/zoo
case ${1:-all} in fashion-mnist|all)
  ( train wrn-10-2.fashion-mnist 16 && train $R-n2 48 $MIMO --model-override initial_width=1 ) &
  ( train $R-n4 85 $MIMO --model-override initial_width=1 &&
    train $R-dynamic 45 $MIMO --model-override initial_width=1 ) &
  wait
  export_run wrn-10-2.fashion-mnist
  for regime in n2 n4 dynamic; do export_run $R-$regime wrn-10-2.fashion-mnist; done
esac
case ${1:-all} in mnist|all)
  # MNIST without the reference's horizontal flips (digits are not mirror-symmetric)
  ( train mimoconv-10-2.mnist-dynamic16 30 $MIMO ) &
  ( train mimoconv-10-2.mnist-dynamic 45 $MIMO --model-override initial_width=1 --no-augment ) &
  wait
  export_run mimoconv-10-2.mnist-dynamic16 && export_run mimoconv-10-2.mnist-dynamic
esac
case ${1:-all} in listops|all)
  # docs/results/run_listops.sh's CPU-sized ListOps (100-512 tokens, 50k / 2k / 2k, seed 0), 2000
  # steps; the preset is the best dev checkpoint
  DATA=runs/listops_data/L512
  STEPS=2000 OUT=runs/zoo DATA=$DATA PARALLEL=1 bash docs/results/run_listops.sh \
    performer-listops.listops mimoformer-att-listops.listops
  generate="python -m keras_mimo.data.listops_generator --output_dir $DATA --num_train 50000"
  generate+=" --num_dev 2000 --num_test 2000 --min_length 100 --max_length 512 --seed 0"
  for recipe in performer-listops.listops mimoformer-att-listops.listops; do
    keras-mimo export-preset "runs/zoo/$recipe" --data-dir "$DATA" --data-command "$generate"
  done
esac
