# Sourced by round 19's device scripts gpu3-9.sh after quality_round18/device_common.sh: the settings each run name
# stands for, written once, and runs NAME "SEEDS" SETTINGS (one background train per seed; wait_and_pack collects).
P="train.epochs=50;train.kmeans_space=probs"
HSD06B60="$P;model.hybrid_sd_fraction=0.6;model.mass_bins=60"  # round 19's default (60 bins at fraction 0.6)
HSD06B80="$P;model.hybrid_sd_fraction=0.6;model.mass_bins=80"  # the default since round 19's confirmation
PROBS="$P;model.hybrid_sd_fraction=0.5;model.mass_bins=40"     # round 18's default (40 bins at fraction 0.5)
# the supervised reference (round 15's sup30): the same network on the labels, 30 epochs, lr halved every 10
SUP30="train.epochs=30;train.pretrain_epochs=30;model.target=truth;train.lr_decay_factor=0.5;train.lr_decay_every=10"
runs() { local seed; for seed in $2; do train "$1" "$seed" "$3" & done; }
