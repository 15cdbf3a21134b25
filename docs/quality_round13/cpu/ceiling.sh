#!/bin/bash
# Round 13, CPU (2 cores), after targets.sh: the supervised figure of the same protocol (round 12's 1-worker CPU
# protocol; model.target truth, every epoch a classification epoch, seeds 1 and 2), so that the CPU variants of
# this round have a ratio to it.
cd "$(dirname "$0")/../../.." || exit 1
. docs/quality_round13/cpu/protocol.sh
for seed in ${SEEDS:-1 2}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --model.target truth --train.pretrain_epochs 20 \
    --run.output_dir /tmp/r13_sup_s$seed --run.run_name sup_s$seed > $LOGS/sup_s$seed.log 2>&1
done
