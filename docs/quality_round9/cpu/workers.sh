#!/bin/bash
# CPU study (2 cores), round 9: 1 vs 2 Horovod workers at equal global batch (256) and lr, demo-size network
# (conf/demo.yaml with the default beta 10 and slow centroids), on the round-8 study sample
# (`python -m studies.quality_gpu unpack --packed .dev_q8/gpudata --out /tmp/jets.parquet`). Round 8 ran 12 epochs
# and 2 seeds, too few to tell a worker-count effect from the seed spread; here 20 epochs (6 pretraining) and
# seeds 1-5, 20 000 training jets per epoch, full val and test every epoch, selected on val. One run at a time.
cd "$(dirname "$0")/../../.." || exit 1
LOGS=${LOGS:-docs/quality_round9/cpu}
C="--config conf/demo.yaml --data ${DATA:-/tmp/jets.parquet} --data.reader_threads 1 --train.epochs 20
  --train.pretrain_epochs 6 --data.max_train_jets 20000 --data.max_eval_jets 0 --train.scale_lr false
  --run.experiment workers_study"
for seed in ${SEEDS:-1 2 3 4 5}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --np -1 --train.batch_size 256 \
    --run.output_dir /tmp/wk9_1_s$seed --run.run_name np1_s$seed > $LOGS/wk_np1_s$seed.log 2>&1
  .venv/bin/python -m jobs.train $C --train.seed $seed --np -2 --train.batch_size 128 \
    --run.output_dir /tmp/wk9_2_s$seed --run.run_name np2_s$seed > $LOGS/wk_np2_s$seed.log 2>&1
done
