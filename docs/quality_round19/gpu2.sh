#!/bin/bash
# Round 19, device call 2 (one GPU): three changes to the pretraining target that the probabilities' start reads,
# with deep k-means as it is (the default otherwise), seeds 1-3, against round 17's default runs (quality_round17/raw2):
#   hsd06:   model.hybrid_sd_fraction 0.6 (the hybrid takes m_SD where soft drop keeps >= 60 % of m; labelled cuts
#            on the hybrid mass of the val jets: 0.778 against 0.768 at 0.5, quality_round19/hybrid_fraction.log)
#   smooth1: model.bin_smoothing 1 (Gaussian targets over neighbouring bins: smoother probabilities for k-means)
#   bins60:  model.mass_bins 60 (40: 0.745-0.799 over 5 seeds; 20 was bimodal, round 16)
# Carry .dev_q17b (docs/quality_round18/device_common.sh says what it holds).
set -u
source docs/quality_round18/device_common.sh
P="train.epochs=50;train.kmeans_space=probs"
for seed in ${SEEDS:-1 2 3}; do
  train hsd06 $seed "$P;model.hybrid_sd_fraction=0.6" &
  train smooth1 $seed "$P;model.bin_smoothing=1.0" &
  train bins60 $seed "$P;model.mass_bins=60" &
done
wait_and_pack
