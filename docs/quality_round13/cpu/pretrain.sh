#!/bin/bash
# Round 13, CPU (2 cores), after ceiling.sh, same protocol and seeds (round 12's 1-worker CPU protocol, alpha_start
# 10, paired with that round's a10 1-worker runs): a longer pretraining, 12 epochs instead of 6, with the same 14
# clustering epochs after it (26 in all). The pretrained latent is what k-means and deep k-means start from; its
# linear probe (0.78 after 20 GPU epochs, round 10) is below the 0.95 x supervised goal.
cd "$(dirname "$0")/../../.." || exit 1
. docs/quality_round13/cpu/protocol.sh
for seed in ${SEEDS:-1 2 3}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --train.pretrain_epochs 12 --train.epochs 26 \
    --run.output_dir /tmp/r13_pre12_s$seed --run.run_name pre12_s$seed > $LOGS/pre12_s$seed.log 2>&1
done
