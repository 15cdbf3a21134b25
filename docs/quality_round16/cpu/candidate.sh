#!/bin/bash
# Round 16, CPU, round 13's protocol (demo-size network, the round-8 sample at /tmp/jets.parquet, unpacked from
# round 15's gpu2.sh pack; 20 epochs of which 6 pretraining, 20 000 training jets per epoch, alpha_start 10,
# selected on val) for the candidate default of the GPU calls: the hybrid-mass target in 40 log bins with the
# k-means start on the classifier's expected bin. 1 worker x batch 256 and 2 workers x batch 128 (round 12's
# workers.sh), seeds 1-3; paired with round 13's default.sh and round 15's hybrid.sh runs of the same seeds.
cd "$(dirname "$0")/../../.." || exit 1
LOGS=docs/quality_round16/cpu
. docs/quality_round13/cpu/protocol.sh
CAND="--model.target mass_hybrid_bins --model.mass_bin_spacing log --model.mass_bins 40 --train.kmeans_space target"
for seed in ${SEEDS:-1 2 3}; do
  for np in ${WORKERS:-1 2}; do
    .venv/bin/python -m jobs.train $C $CAND --train.seed $seed --np -$np --train.batch_size $(( 256 / np )) \
      --run.output_dir /tmp/r16_cand_np${np}_s$seed --run.run_name cand_np${np}_s$seed \
      > $LOGS/cand_np${np}_s$seed.log 2>&1
  done
done
