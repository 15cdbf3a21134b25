#!/bin/bash
# Round 14, CPU: self-distillation alone as the pretraining (model.target none, model.ssl_method dino, weight 1),
# round 13's protocol but 14 of the 20 epochs pretraining (a 9-epoch trial with 6 pretraining and teacher momentum
# 0.996 stayed at a loss of ~4.0 = log 64, i.e. no code learnt, k-means init 0.53, clustering 0.37-0.39). Views
# keep the jet mass (ssl_drop 0), 64 prototypes, teacher momentum 0.99. Seed 1.
cd "$(dirname "$0")/../../.." || exit 1
LOGS=docs/quality_round14/cpu
. docs/quality_round13/cpu/protocol.sh
for seed in ${SEEDS:-1}; do
  .venv/bin/python -m jobs.train $C --train.seed $seed --train.pretrain_epochs 14 --model.target none \
    --model.ssl_weight 1 --model.ssl_method dino --model.ssl_drop 0 --model.ssl_prototypes 64 \
    --model.ssl_teacher_momentum 0.99 --run.output_dir /tmp/r14_dino_none_s$seed --run.run_name dino_none_s$seed \
    > $LOGS/dino_none_s$seed.log 2>&1
done
