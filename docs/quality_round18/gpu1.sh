#!/bin/bash
# Round 18, device call 1 (one GPU). Round 17's call 2 ran the default (train.kmeans_space probs) end to end:
# val-selected test 0.790 +- 0.009 over 6 seeds (start 0.779). The clustering phase holds the start for 5-15 epochs
# (the selected epochs are clustering epochs 1-16), then falls to about 0.62-0.65 with a third of the jets changing
# cluster between epochs. Two single changes against that baseline, seeds 1-4 each, 50 epochs in all:
#   pre35: train.pretrain_epochs 35 (the classifier was still improving at epoch 20; 15 clustering epochs left)
#   beta3: train.beta 3 (the clustering term a third as strong: a calmer phase; a calmer phase by a lower lr,
#          train.cluster_lr_factor 0.3, lost 0.5-2.6 points on every CPU run of round 18's cpu/candidate.sh)
set -u
source docs/quality_round18/device_common.sh
P="train.epochs=50;train.kmeans_space=probs"
for seed in ${SEEDS:-1 2 3 4}; do
  train pre35 $seed "$P;train.pretrain_epochs=35" &
  train beta3 $seed "$P;train.beta=3" &
done
wait_and_pack
