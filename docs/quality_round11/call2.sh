#!/bin/bash
# Round 11, device call 2 (one GPU): does the shuffle make the training swing from epoch to epoch?
# Call 1 showed the default swinging (pretraining: test mass-bin accuracy 0.49-0.76 between consecutive epochs,
# loss spikes 0.19 -> 0.42; the same seed-1 config ended at val 0.691 / test 0.689 where round 10 had 0.728 /
# 0.731). On this sample (23 training row groups of one class each, 91 k jets) the loader of commit 1c5a8a9
# emptied its 65 536-jet buffer block by block, so every epoch ended on a block of 6-7 row groups: its last 24 of
# 89 batches were 44 % W / 39 % Z / 17 % t (epoch 0, seed 1). Commit 8f5b129 draws every batch from a streaming
# buffer instead (review mends in 5a02045). Eight trainings side by side (SEEDS=1 for five):
#   block_default (seeds 1, 2):  conf/ucluster.yaml, 50 epochs, the block loader of 1c5a8a9, run from a copy of the
#                                tree (before the call, here: git show 1c5a8a9:ucluster/data/loader.py >
#                                .dev_q8/loader_block.py; the device has no git)
#   stream_default (seeds 1, 2): the same with the streaming loader (this tree)
#   stream_whole (seeds 1, 2):   the streaming loader with data.shuffle_buffer 131072: the whole shard is read
#                                before the first batch, so every batch is a uniform draw of the epoch's jets
#   block_sup30, stream_sup30 (seed 1): the supervised ceiling (30 epochs, lr halved every 10), either loader
set -u
[ -f .dev_q8/loader_block.py ] || { echo ".dev_q8/loader_block.py is missing (see the header)"; exit 1; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q8/whl/*.whl || exit 1
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
PYTHONPATH=/tmp/site:$PWD python3 -m studies.quality_gpu unpack --packed .dev_q8/gpudata --out /tmp/jets.parquet \
  > /tmp/unpack.log 2>&1 || { tail -5 /tmp/unpack.log; exit 1; }
mkdir -p /tmp/before && cp -r ucluster studies conf /tmp/before/ && cp .dev_q8/loader_block.py /tmp/before/ucluster/data/loader.py
echo "unpacked $(el) s"
mkdir -p /tmp/logs
SUP="train.epochs=30;train.pretrain_epochs=30;model.target=truth;train.lr_decay_factor=0.5;train.lr_decay_every=10"
train() { tree=$1; name=$2; seed=$3; shift 3; (cd $tree && PYTHONPATH=/tmp/site:$tree python3 -m studies.quality_gpu sweep \
    --data /tmp/jets.parquet --data.reader_threads 1 --seeds $seed --run.output_dir /tmp/runs/${name}_$seed \
    --json /tmp/logs/${name}_s$seed.json --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1); }
for seed in ${SEEDS:-1 2}; do
  train /tmp/before block_default $seed "train.epochs=50" &
  train $PWD stream_default $seed "train.epochs=50" &
  train $PWD stream_whole $seed "train.epochs=50;data.shuffle_buffer=131072" &
done
train /tmp/before block_sup30 1 "$SUP" &
train $PWD stream_sup30 1 "$SUP" &
# the logs go to $OUT every 30 s, so a call cut short by the device budget still returns the epochs run so far
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-480} ]; do
  sleep 3; [ $(( $(el) % 30 )) -lt 3 ] && (cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs2.tgz)
done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
(cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs2.tgz)
