#!/bin/bash
# Round 14, CPU, round 13's protocol (paired with its default.sh runs): target m_SD in 20 bins of 12 GeV over the
# mass window, the default's bin count. Round 13's 24 bins of 10 GeV had edges at 80 and 90 GeV, so the W (79-81)
# and Z (89-92) peaks each straddled an edge (-12.7 points); these edges fall at 82 and 94 GeV, one peak per bin.
cd "$(dirname "$0")/../../.." || exit 1
LOGS=docs/quality_round14/cpu
. docs/quality_round13/cpu/protocol.sh
for seed in ${SEEDS:-1 2 3}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --model.target mass_sd_bins --model.mass_bins 20 \
    --run.output_dir /tmp/r14_msd20_s$seed --run.run_name msd20_s$seed > $LOGS/msd20_s$seed.log 2>&1
done
