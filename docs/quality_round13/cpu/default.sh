#!/bin/bash
# Round 13, CPU (2 cores): the default (alpha_start 10, 20 epochs of which 6 pretraining) re-run on the code of this
# round, seeds 1-3, as the baseline of every paired figure here. Commit 2aacf41 changed what a capped read of a split
# returns, and the k-means initialisation sample (train.kmeans_sample, 4 000 jets in conf/demo.yaml) and the
# input-standardisation sample are capped reads: before it they came from the first whole row groups in spread
# order, which on this one-file, class-sorted sample with 4 096-jet row groups was a single class for the k-means
# sample. Round 12's runs (init test accuracy 0.50) ran before it. Also rot03 seed 1 again: variants.sh started it a
# minute before that commit.
cd "$(dirname "$0")/../../.." || exit 1
. docs/quality_round13/cpu/protocol.sh
for seed in ${SEEDS:-1 2 3}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --run.output_dir /tmp/r13_default_s$seed \
    --run.run_name default_s$seed > $LOGS/default_s$seed.log 2>&1
done
.venv/bin/python -m jobs.train $C --train.seed 1 --model.ssl_weight 0.3 --model.ssl_drop 0 \
  --run.output_dir /tmp/r13_rot03_s1 --run.run_name rot03_s1 > $LOGS/rot03_s1.log 2>&1
