#!/bin/bash
# Round 13, CPU (2 cores), after pretrain.sh (12 pretraining epochs + 14 clustering: +1.6 +- 0.5 points over the
# default's 6 + 14 on seeds 1-3). Same protocol and seeds, to tell the longer pretraining from the longer run:
#   c26:   6 pretraining epochs + 20 clustering epochs (26 in all, as pre12)
#   pre18: 18 pretraining epochs + 14 clustering epochs (32 in all)
cd "$(dirname "$0")/../../.." || exit 1
. docs/quality_round13/cpu/protocol.sh
for seed in ${SEEDS:-1 2 3}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --train.epochs 26 \
    --run.output_dir /tmp/r13_c26_s$seed --run.run_name c26_s$seed > $LOGS/c26_s$seed.log 2>&1
  .venv/bin/python -m jobs.train $C --train.seed $seed --train.pretrain_epochs 18 --train.epochs 32 \
    --run.output_dir /tmp/r13_pre18_s$seed --run.run_name pre18_s$seed > $LOGS/pre18_s$seed.log 2>&1
done
