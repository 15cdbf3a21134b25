#!/bin/bash
# Round 19, prepared for the next device call (one GPU; not run yet): the confirmation of the 80-bin default on
# seeds it was not chosen on (10-15), beside the supervised reference (round 15's sup30) on seeds 4-6 of the same
# card; with raw6/ that makes six supervised seeds. Nine runs at once: about 400 s on a warm H200.
# Compare only with runs of the same card (confirm.log: the card moves a seed's result by about half a point).
# Carry .dev_q17b (docs/quality_round18/device_common.sh says what it holds).
set -u
source docs/quality_round18/device_common.sh
P="train.epochs=50;train.kmeans_space=probs"
SUP="train.epochs=30;train.pretrain_epochs=30;model.target=truth;train.lr_decay_factor=0.5;train.lr_decay_every=10"
for seed in ${SEEDS:-10 11 12 13 14 15}; do
  train hsd06b80 $seed "$P;model.hybrid_sd_fraction=0.6;model.mass_bins=80" &
done
for seed in ${SUP_SEEDS:-4 5 6}; do
  train sup30 $seed "$SUP" &
done
LIMIT=${LIMIT:-560} wait_and_pack
