#!/bin/bash
# Round 19, device call 3 (the session's last 278 s on a warm H100): hsd06 and bins60 of gpu2.sh together, seeds 1-3
set -u
source docs/quality_round18/device_common.sh
P="train.epochs=50;train.kmeans_space=probs"
for seed in ${SEEDS:-1 2 3}; do
  train hsd06b60 $seed "$P;model.hybrid_sd_fraction=0.6;model.mass_bins=60" &
done
LIMIT=${LIMIT:-235} wait_and_pack
