#!/bin/bash
# Round 19, device call 7 (one GPU, session 14; the last ~400 s): a probe for the next round, not a change of the
# default. 80 bins of the hybrid mass (fraction 0.6) on seeds 4-9, paired with the default's runs of those seeds
# on this card (raw4/). 40 -> 60 bins gave +0.8 +- 0.3 points (seeds 1-3, H100).
# Carry .dev_q17b (docs/quality_round18/device_common.sh says what it holds).
set -u
source docs/quality_round18/device_common.sh
P="train.epochs=50;train.kmeans_space=probs"
for seed in ${SEEDS:-4 5 6 7 8 9}; do
  train hsd06b80 $seed "$P;model.hybrid_sd_fraction=0.6;model.mass_bins=80" &
done
LIMIT=${LIMIT:-290} wait_and_pack
