#!/bin/bash
# Round 12, device call 1 (one GPU), the round-8 packed sample, the streaming loader (this tree), 50 epochs.
# Every default run averages the weights of its last clustering epochs (train.average_epochs, new) and logs its
# live weights' figures too (live_*): training follows the live weights, so each run gives the default's curve and
# the averaged one on the same trajectory. The supervised ceiling is re-measured with the streaming loader.
#   avg5  (seeds 1, 2, 3): conf/ucluster.yaml, train.average_epochs 5
#   avg10 (seeds 4, 5, 6): conf/ucluster.yaml, train.average_epochs 10
#   sup30 (seeds 1, 2):    the same network on the true labels, 30 epochs, lr halved every 10
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q8/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu unpack --packed .dev_q8/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1 \
  || { tail -5 /tmp/unpack.log; exit 1; }
echo "unpacked $(el) s"
mkdir -p /tmp/logs
SUP="train.epochs=30;train.pretrain_epochs=30;model.target=truth;train.lr_decay_factor=0.5;train.lr_decay_every=10"
train() { name=$1; seed=$2; shift 2; python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet \
    --data.reader_threads 1 --seeds $seed --run.output_dir /tmp/runs/${name}_$seed --json /tmp/logs/${name}_s$seed.json \
    --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1; }
for seed in 1 2 3; do train avg5 $seed "train.epochs=50;train.average_epochs=5" & done
for seed in 4 5 6; do train avg10 $seed "train.epochs=50;train.average_epochs=10" & done
for seed in 1 2; do train sup30 $seed "$SUP" & done
# the logs go to $OUT every 30 s, so a call cut short still returns the epochs run so far
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-540} ]; do
  sleep 3; [ $(( $(el) % 30 )) -lt 3 ] && (cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs1.tgz)
done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
(cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs1.tgz)
