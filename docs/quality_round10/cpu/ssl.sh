#!/bin/bash
# CPU study (2 cores), round 10: the self-supervised term on the demo-size network, round-9 protocol
# (conf/demo.yaml, 20 epochs of which 6 pretraining, 20 000 training jets per epoch, 1 Horovod worker, batch 256,
# lr 1e-3, full val and test every epoch, selected on val; the round-8 study sample unpacked to /tmp/jets.parquet).
# Compare: the default of round 9 with the same command, seeds 1-8: test 0.683 +- 0.017 (seeds 1/2: 0.695/0.670).
cd "$(dirname "$0")/../../.." || exit 1
LOGS=${LOGS:-docs/quality_round10/cpu}
C="--config conf/demo.yaml --data ${DATA:-/tmp/jets.parquet} --data.reader_threads 1 --train.epochs 20
  --train.pretrain_epochs 6 --data.max_train_jets 20000 --data.max_eval_jets 0 --train.scale_lr false
  --run.experiment ssl_study --np -1 --train.batch_size 256 --run.progress false"
for seed in ${SEEDS:-1 2}; do
  for v in "mb_ssl1:--model.ssl_weight 1.0" "ssl_only:--model.target none --model.ssl_weight 1.0"; do
    name=${v%%:*}; args=${v#*:}
    .venv/bin/python -m jobs.train $C $args --train.seed $seed --run.output_dir /tmp/ssl10_${name}_s$seed \
      --run.run_name ${name}_s$seed > $LOGS/${name}_s$seed.log 2>&1
  done
done
