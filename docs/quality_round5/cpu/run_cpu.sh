#!/bin/bash
# CPU study (2 cores, 2026-12-04): demo-size network (conf/demo.yaml) on the round-5 study sample (91 402 training
# jets; `studies.quality_gpu unpack` of the sample packed by call1.sh), JAX engine on the CPU, one run after another.
# 18 epochs (6 pretraining), 30 000 training jets per epoch, the full val and test splits every epoch.
cd "$(dirname "$0")/../../.." || exit 1
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
S=".venv/bin/python -m studies.quality_gpu sweep --config conf/demo.yaml --data ${DATA:-/tmp/jets.parquet} \
  --data.reader_threads 1 --train.epochs 18 --train.pretrain_epochs 6 --data.max_train_jets 30000 \
  --data.max_eval_jets 0 --train.batch_size 256 --train.beta 1 --train.balance 0.1 --run.output_dir /tmp/cpuexp"
for seed in ${SEEDS:-1}; do
  $S --seeds $seed --variant "base:" > /tmp/cpuexp_base_s$seed.log 2>&1
  $S --seeds $seed --variant "cscale:model.centroid_step_scale=0.05" > /tmp/cpuexp_cscale_s$seed.log 2>&1
done
$S --seeds 1 --variant "clip:train.clip_norm=1.0" > /tmp/cpuexp_clip_s1.log 2>&1
