#!/bin/bash
# Round 18, device call 2 (one GPU; not run in round 18: its device time was spent). latent_fixed_point.py finds
# that the start's partition is not a fixed point of k-means on the latent: Lloyd steps from the start's centroids
# go to the poor 0.62 solution, as the clustering phase does after 5-15 epochs. Two ways to keep the phase near
# the start, seeds 1-3 each, 50 epochs (20 pretraining), against round 17's probs runs (quality_round17/raw2):
#   cs001: model.centroid_step_scale 0.001 (centroids all but frozen at the start's latent means: the jets are
#          pulled to the start's centroids and the centroids cannot follow them to the latent's own optimum;
#          on the CPU, where the phase climbs by moving them, -1.1 +- 0.3 points on 1 worker: cpu/compare.log)
#   clr03: train.cluster_lr_factor 0.3; clr01: 0.1 (a slower network in the clustering phase; on the CPU, where
#          the demo network still climbs during that phase, 0.3 lost 1-2.5 points: cpu/compare.log)
set -u
source docs/quality_round18/device_common.sh
P="train.epochs=50;train.kmeans_space=probs"
for seed in ${SEEDS:-1 2 3}; do
  train cs001 $seed "$P;model.centroid_step_scale=0.001" &
  train clr03 $seed "$P;train.cluster_lr_factor=0.3" &
  train clr01 $seed "$P;train.cluster_lr_factor=0.1" &
done
wait_and_pack
