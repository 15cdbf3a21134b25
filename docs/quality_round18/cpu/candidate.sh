#!/bin/bash
# Round 18, CPU, round 13's protocol (demo-size network, the round-8 sample at /tmp/jets.parquet; 20 epochs of
# which 6 pretraining, 20 000 training jets per epoch, alpha_start 10, selected on val): the default (round 17:
# kmeans_space probs) with one change, ARGS, named NAME (default: the clustering phase's lr scaled by 0.3,
# clr0.3). 1 worker x batch 256 and 2 workers x batch 128, seeds 1-3; paired with round 17's cpu/candidate.sh runs
# (the default) of the same seeds. Run as: NAME=beta3 ARGS="--train.beta 3" bash candidate.sh
cd "$(dirname "$0")/../../.." || exit 1
LOGS=docs/quality_round18/cpu
. docs/quality_round13/cpu/protocol.sh
NAME=${NAME:-clr0.3}
ARGS=${ARGS:---train.cluster_lr_factor 0.3}
CAND="--model.target mass_hybrid_bins --model.mass_bin_spacing log --model.mass_bins 40 --train.kmeans_space probs"
for seed in ${SEEDS:-1 2 3}; do
  for np in ${WORKERS:-1 2}; do
    .venv/bin/python -m jobs.train $C $CAND $ARGS --train.seed $seed --np -$np \
      --train.batch_size $(( 256 / np )) --run.output_dir /tmp/r18_${NAME}_np${np}_s$seed \
      --run.run_name ${NAME}_np${np}_s$seed > $LOGS/${NAME}_np${np}_s$seed.log 2>&1
  done
done
