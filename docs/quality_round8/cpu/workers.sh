#!/bin/bash
# CPU study (2 cores): 1 vs 2 Horovod workers at equal global batch (256) and lr, demo-size network
# (conf/demo.yaml: beta 10; centroid_step_scale 0.05 is the new default), on the round-8 study sample
# (`python -m studies.quality_gpu unpack --packed .dev_q8/gpudata --out /tmp/jets.parquet`). One run after the other;
# 12 epochs (4 pretraining), 20 000 training jets per epoch, full val and test every epoch, selected on val.
cd "$(dirname "$0")/../../.." || exit 1
C="--config conf/demo.yaml --data ${DATA:-/tmp/jets.parquet} --data.reader_threads 1 --train.epochs 12
  --train.pretrain_epochs 4 --data.max_train_jets 20000 --data.max_eval_jets 0 --train.scale_lr false
  --run.experiment workers_study"
for seed in ${SEEDS:-1}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --np -1 --train.batch_size 256 \
    --run.output_dir /tmp/wk1_s$seed --run.run_name np1_s$seed > /tmp/wk_np1_s$seed.log 2>&1
  .venv/bin/python -m jobs.train $C --train.seed $seed --np -2 --train.batch_size 128 \
    --run.output_dir /tmp/wk2_s$seed --run.run_name np2_s$seed > /tmp/wk_np2_s$seed.log 2>&1
done
