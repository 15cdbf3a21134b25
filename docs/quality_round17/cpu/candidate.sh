#!/bin/bash
# Round 17, CPU, round 13's protocol (demo-size network, the round-8 sample at /tmp/jets.parquet, unpacked from
# round 17's gpu1.sh pack; 20 epochs of which 6 pretraining, 20 000 training jets per epoch, alpha_start 10,
# selected on val): round 16's default with the k-means start on the classifier's output probabilities
# (train.kmeans_space probs). 1 worker x batch 256 and 2 workers x batch 128, seeds 1-3; paired with round 16's
# candidate.sh runs (the round 16 default, start on the expected bin) of the same seeds.
cd "$(dirname "$0")/../../.." || exit 1
LOGS=docs/quality_round17/cpu
. docs/quality_round13/cpu/protocol.sh
CAND="--model.target mass_hybrid_bins --model.mass_bin_spacing log --model.mass_bins 40 --train.kmeans_space probs"
for seed in ${SEEDS:-1 2 3}; do
  for np in ${WORKERS:-1 2}; do
    .venv/bin/python -m jobs.train $C $CAND --train.seed $seed --np -$np --train.batch_size $(( 256 / np )) \
      --run.output_dir /tmp/r17_probs_np${np}_s$seed --run.run_name probs_np${np}_s$seed \
      > $LOGS/probs_np${np}_s$seed.log 2>&1
  done
done
