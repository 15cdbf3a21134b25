#!/bin/bash
# Round 13, CPU (2 cores), after variants.sh, same protocol and seeds (round 12's 1-worker CPU protocol, alpha_start
# 10, paired with that round's a10 1-worker runs): pretraining targets built on the soft-drop groomed mass, whose
# labelled cuts separate W and Z better than the ungroomed mass (0.749 vs 0.701). Both lost with alpha_start 1
# (48 m_SD bins: 0.500, the Z cluster emptied; m x m_SD: 0.648 with beta 3), whose first clustering epoch wiped the
# k-means init; here they are re-measured on the new default:
#   msd:  24 bins of m_SD over the mass window, 10 GeV wide (edges at 80 and 90 GeV: the W and Z peaks, 79-81
#         and 89-92 GeV, each straddle an edge); jets groomed below the window go to the first bin
#   mmsd: the joint m x m_SD grid, 10 x 24
cd "$(dirname "$0")/../../.." || exit 1
. docs/quality_round13/cpu/protocol.sh
for seed in ${SEEDS:-1 2 3}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --model.target mass_sd_bins --model.mass_bins 24 \
    --run.output_dir /tmp/r13_msd_s$seed --run.run_name msd_s$seed > $LOGS/msd_s$seed.log 2>&1
  .venv/bin/python -m jobs.train $C --train.seed $seed --model.target joint_bins --model.target_vars mass,mass_sd \
    --model.target_bins 10,24 --run.output_dir /tmp/r13_mmsd_s$seed --run.run_name mmsd_s$seed > $LOGS/mmsd_s$seed.log 2>&1
done
