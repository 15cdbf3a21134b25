#!/bin/bash
# Round 12, CPU (2 cores): the round-11 streaming protocol (docs/quality_round11/cpu/loader.sh: demo-size network,
# the round-8 sample at /tmp/jets.parquet, 20 epochs of which 6 pretraining, every training jet, batch 256, lr 1e-3,
# 1 Horovod worker) with train.average_epochs 4: each run logs the averaged model's figures and its live weights'
# (live_*), on one training trajectory. One run at a time; the per-epoch figures: history.py (this folder).
cd "$(dirname "$0")/../../.." || exit 1
LOGS=${LOGS:-docs/quality_round12/cpu}
C="--config conf/demo.yaml --data ${DATA:-/tmp/jets.parquet} --data.reader_threads 1 --train.epochs 20
  --train.pretrain_epochs 6 --data.max_train_jets 0 --data.max_eval_jets 0 --train.scale_lr false
  --train.batch_size 256 --np -1 --run.experiment average_study --run.progress false"
for seed in ${SEEDS:-1 2}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --train.average_epochs ${K:-4} \
    --run.output_dir /tmp/avg12_s$seed --run.run_name avg${K:-4}_s$seed > $LOGS/avg${K:-4}_s$seed.log 2>&1
done
