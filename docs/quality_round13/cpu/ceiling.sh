#!/bin/bash
# Round 13, CPU (2 cores), after targets.sh: the supervised figure of the same protocol (round 12's 1-worker CPU
# protocol; model.target truth, every epoch a classification epoch, seeds 1 and 2), so that the CPU variants of
# this round have a ratio to it.
cd "$(dirname "$0")/../../.." || exit 1
LOGS=${LOGS:-docs/quality_round13/cpu}
C="--config conf/demo.yaml --data ${DATA:-/tmp/jets.parquet} --data.reader_threads 1 --train.epochs 20
  --train.pretrain_epochs 6 --data.max_train_jets 20000 --data.max_eval_jets 0 --train.scale_lr false
  --run.experiment workers_study --run.progress false --train.alpha_start 10 --np -1 --train.batch_size 256"
for seed in ${SEEDS:-1 2}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --model.target truth --train.pretrain_epochs 20 \
    --run.output_dir /tmp/r13_sup_s$seed --run.run_name sup_s$seed > $LOGS/sup_s$seed.log 2>&1
done
