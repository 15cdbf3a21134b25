#!/bin/bash
# Round 14, CPU (2 cores), round 13's protocol (docs/quality_round13/cpu/protocol.sh: demo-size network, round-8
# sample at /tmp/jets.parquet, 20 epochs of which 6 pretraining, 20 000 training jets per epoch, batch 256,
# alpha_start 10, 1 worker, selected on val), paired with round 13's default.sh runs of the same seeds:
#   dino_mass: UCluster's mass bins + the self-distillation term (model.ssl_method dino) at weight 0.3, views that
#              keep the jet mass (ssl_drop 0), 64 prototypes, teacher momentum 0.99.
cd "$(dirname "$0")/../../.." || exit 1
LOGS=docs/quality_round14/cpu
. docs/quality_round13/cpu/protocol.sh
for seed in ${SEEDS:-1 2 3}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --model.ssl_weight 0.3 --model.ssl_method dino \
    --model.ssl_drop 0 --model.ssl_prototypes 64 --model.ssl_teacher_momentum 0.99 \
    --run.output_dir /tmp/r14_dino_mass_s$seed --run.run_name dino_mass_s$seed > $LOGS/dino_mass_s$seed.log 2>&1
done
