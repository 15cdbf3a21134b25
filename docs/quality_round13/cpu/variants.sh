#!/bin/bash
# Round 13, CPU (2 cores). The device budget was spent before this session started (80 s left), so the same
# comparison with the paper-size network could not run. Here on round 12's 1-worker CPU protocol
# (docs/quality_round12/cpu/workers.sh: demo-size network, round-8 sample at /tmp/jets.parquet, 20 epochs of which
# 6 pretraining, 20 000 training jets per epoch, batch 256, lr 1e-3, alpha_start 10, full val and test every
# epoch, selected on val), paired with that round's a10 1-worker runs of the same seeds:
#   rot03: mass bins + the self-supervised term at weight 0.3 with views that keep the jet mass (rotation about
#          the jet axis and an axis shift; model.ssl_drop 0). Round 10's views dropped 10 % of the particles, which
#          moves the mass: every weight lost 10-35 points (with alpha_start 1).
#   t3:    the joint m x tau21 x tau32 grid (20 x 3 x 3), whose pretrained latent held the most (probe 0.79), tied
#          with mass bins in round 10 (with alpha_start 1).
cd "$(dirname "$0")/../../.." || exit 1
. docs/quality_round13/cpu/protocol.sh
for seed in ${SEEDS:-1 2 3}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --model.ssl_weight 0.3 --model.ssl_drop 0 \
    --run.output_dir /tmp/r13_rot03_s$seed --run.run_name rot03_s$seed > $LOGS/rot03_s$seed.log 2>&1
  .venv/bin/python -m jobs.train $C --train.seed $seed --model.target joint_bins --model.target_vars mass,tau21,tau32 \
    --model.target_bins 20,3,3 --run.output_dir /tmp/r13_t3_s$seed --run.run_name t3_s$seed > $LOGS/t3_s$seed.log 2>&1
done
