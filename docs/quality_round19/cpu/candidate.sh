#!/bin/bash
# Round 19, CPU, round 13's protocol (demo-size network, the round-8 sample at /tmp/jets.parquet; 20 epochs of
# which 6 pretraining, 20 000 training jets per epoch, alpha_start 10, selected on val): round 18's default
# (40 log bins of the hybrid mass at fraction 0.5, start on the probabilities) with one change, ARGS, named NAME
# (default: the GPU's round 19 winner, hybrid fraction 0.6 and 60 bins). 1 worker x batch 256 and 2 workers x
# batch 128, seeds 1-3; paired with round 17's cpu/candidate.sh runs (probs_np*, that default) of the same seeds.
cd "$(dirname "$0")/../../.." || exit 1
LOGS=docs/quality_round19/cpu
. docs/quality_round13/cpu/protocol.sh
NAME=${NAME:-hsd06b60}
ARGS=${ARGS:---model.hybrid_sd_fraction 0.6 --model.mass_bins 60}
CAND="--model.target mass_hybrid_bins --model.mass_bin_spacing log --model.mass_bins 40 --train.kmeans_space probs"
for seed in ${SEEDS:-1 2 3}; do
  for np in ${WORKERS:-1 2}; do
    .venv/bin/python -m jobs.train $C $CAND $ARGS --train.seed $seed --np -$np \
      --train.batch_size $(( 256 / np )) --run.output_dir /tmp/r19_${NAME}_np${np}_s$seed \
      --run.run_name ${NAME}_np${np}_s$seed > $LOGS/${NAME}_np${np}_s$seed.log 2>&1
  done
done
