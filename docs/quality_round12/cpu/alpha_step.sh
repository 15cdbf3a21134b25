#!/bin/bash
# Round 12, CPU (2 cores), after workers.sh: does the assignment need to keep hardening once it starts sharp?
# On the GPU, alpha_start 10 climbed for 15-25 clustering epochs and then drifted down (last epoch 3 points under
# the val-selected one) while alpha grew to 70; alpha_start 30 and 100 froze. Here alpha_start 10 with
# train.alpha_step 0 (alpha stays 10), on workers.sh's 1-worker protocol and seeds, to pair with its a10 runs.
cd "$(dirname "$0")/../../.." || exit 1
. docs/quality_round12/cpu/protocol.sh
for seed in ${SEEDS:-1 2 3}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --train.alpha_start 10 --train.alpha_step 0 --np -1 \
    --train.batch_size 256 --run.output_dir /tmp/wk12_a10s0_1_s$seed --run.run_name a10s0_np1_s$seed \
    > $LOGS/wk_a10s0_np1_s$seed.log 2>&1
done
