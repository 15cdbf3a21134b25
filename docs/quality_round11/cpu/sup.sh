#!/bin/bash
# Round 11, CPU (2 cores): the supervised demo-size network (conf/demo.yaml, model.target truth), 12 epochs of
# every training jet (batch 256, lr 1e-3 constant), JAX engine, seed 1, the round-8 study sample: with the default
# 65 536-jet buffer (run with the block loader of commit 1c5a8a9) and with a 131 072-jet buffer that holds the
# whole training shard (run with the streaming loader of 8f5b129; with the shard in the buffer both loaders
# shuffle it whole). Per-epoch test accuracy in the EPOCH lines of sup_b65k.log / sup_b131k.log.
cd "$(dirname "$0")/../../.." || exit 1
for v in "sup_b65k:data.shuffle_buffer=65536" "sup_b131k:data.shuffle_buffer=131072"; do
KERAS_BACKEND=jax .venv/bin/python -m studies.quality_gpu sweep --config conf/demo.yaml --data /tmp/jets.parquet \
  --data.reader_threads 1 --seeds 1 --run.output_dir /tmp/cpu11/runs --train.batch_size 256 \
  --variant "$v;train.epochs=12;train.pretrain_epochs=12;model.target=truth" \
  > docs/quality_round11/cpu/${v%%:*}.log 2>&1
done
