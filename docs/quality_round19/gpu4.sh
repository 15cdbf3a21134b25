#!/bin/bash
# Round 19, device call 4 (one GPU, session 14): the confirmation run the round left open. The default (hsd06b60:
# 60 log bins of the hybrid mass at fraction 0.6) on seeds 4-6, which round 17's default runs pair
# (quality_round17/raw2/probs_s4-6); and, for a wider pair, seeds 7-9 of the default and of the old target
# (probs: 40 bins, fraction 0.5, set explicitly as they are no longer the default). Nine runs at once: about 400 s.
# Carry .dev_q17b (docs/quality_round18/device_common.sh says what it holds).
set -u
source docs/quality_round18/device_common.sh
P="train.epochs=50;train.kmeans_space=probs"
for seed in ${SEEDS:-4 5 6 7 8 9}; do
  train hsd06b60 $seed "$P;model.hybrid_sd_fraction=0.6;model.mass_bins=60" &
done
for seed in ${OLD_SEEDS:-7 8 9}; do
  train probs $seed "$P;model.hybrid_sd_fraction=0.5;model.mass_bins=40" &
done
LIMIT=${LIMIT:-560} wait_and_pack
