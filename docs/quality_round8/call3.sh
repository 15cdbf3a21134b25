#!/bin/bash
# Round 8, device call 3 (one GPU): the sample packed by call 1 (.dev_q8/gpudata). The new default as it ships
# (conf/ucluster.yaml: 100 epochs, 20 pretraining, beta 10, centroid_step_scale 0.05), seeds 1-3, and the same
# network trained on the labels (model.target truth, 30 epochs: the supervised figure) beside them, 4 runs at once.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q8/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.2
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu unpack --packed .dev_q8/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1 \
  || { tail -5 /tmp/unpack.log; exit 1; }
echo "unpacked $(el) s"
S="python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet --data.reader_threads 2"
mkdir -p /tmp/logs
run() { name=$1; shift; $S --run.output_dir /tmp/runs/$name --json /tmp/logs/$name.json "$@" > /tmp/logs/$name.log 2>&1 & }
for s in 1 2 3; do run default100_s$s --seeds $s --variant "default100:"; done
run sup_s1 --seeds 1 --train.epochs 30 --train.pretrain_epochs 30 --model.target truth --variant "sup:"
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-560} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
(cd /tmp/logs && tar czf $OUT/logs3.tgz .)
