#!/bin/bash
# Round 19, device call 1 (one GPU): train.cluster_objective self_label against deep k-means (the default), seeds
# 1-3, 50 epochs (20 pretraining), beside round 17's default runs (quality_round17/raw2) of the same seeds:
#   sl05:   the start's partition, the half of each cluster's training jets nearest their centroid labelled, fixed
#   sl08:   the same with 80 % labelled
#   sl05e1: sl05 relabelled from the current model at every clustering epoch (self-training, as SCAN's step)
# Carry .dev_q17b (docs/quality_round18/device_common.sh says what it holds).
set -u
source docs/quality_round18/device_common.sh
P="train.epochs=50;train.kmeans_space=probs;train.cluster_objective=self_label"
for seed in ${SEEDS:-1 2 3}; do
  train sl05 $seed "$P" &
  train sl08 $seed "$P;train.self_label_fraction=0.8" &
  train sl05e1 $seed "$P;train.self_label_every=1" &
done
wait_and_pack
