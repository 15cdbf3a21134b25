#!/bin/bash
# Round 15, CPU, round 13's protocol (demo-size network, the round-8 sample at /tmp/jets.parquet; paired with round
# 13's default.sh runs of the same seeds): the new target, 20 log-spaced bins of the hybrid mass (m_SD where soft
# drop keeps at least half of m, else m). VARIANT picks: hyb (k-means init on the latent, default) or hyb_tgt
# (k-means init on the classifier's expected bin, train.kmeans_space target).
cd "$(dirname "$0")/../../.." || exit 1
LOGS=docs/quality_round15/cpu
. docs/quality_round13/cpu/protocol.sh
VARIANT=${VARIANT:-hyb}
EXTRA=""
[ "$VARIANT" = hyb_tgt ] && EXTRA="--train.kmeans_space target"
for seed in ${SEEDS:-1 2 3}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --model.target mass_hybrid_bins \
    --model.mass_bin_spacing log $EXTRA \
    --run.output_dir /tmp/r15_${VARIANT}_s$seed --run.run_name ${VARIANT}_s$seed > $LOGS/${VARIANT}_s$seed.log 2>&1
done
