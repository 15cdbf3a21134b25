#!/bin/bash
# Round 12, CPU (2 cores): the round-9 protocol (docs/quality_round9/cpu/workers.sh: demo-size network, the
# round-8 sample at /tmp/jets.parquet, 20 epochs of which 6 pretraining, 20 000 training jets per epoch, global
# batch 256 and lr 1e-3 for 1 worker x 256 and 2 workers x 128, full val and test every epoch, selected on val)
# with the streaming loader, for train.alpha_start 10 (the new default, from the GPU calls of this round) on 1 and
# 2 workers, and alpha_start 1 (the old one) on 1 worker (ALPHAS=10 skips it). One run at a time.
cd "$(dirname "$0")/../../.." || exit 1
. docs/quality_round12/cpu/protocol.sh
for seed in ${SEEDS:-1 2 3}; do
  for a in ${ALPHAS:-10 1}; do
    .venv/bin/python -m jobs.train $C --train.seed $seed --train.alpha_start $a --np -1 --train.batch_size 256 \
      --run.output_dir /tmp/wk12_a${a}_1_s$seed --run.run_name a${a}_np1_s$seed > $LOGS/wk_a${a}_np1_s$seed.log 2>&1
  done
  .venv/bin/python -m jobs.train $C --train.seed $seed --train.alpha_start 10 --np -2 --train.batch_size 128 \
    --run.output_dir /tmp/wk12_a10_2_s$seed --run.run_name a10_np2_s$seed > $LOGS/wk_a10_np2_s$seed.log 2>&1
done
