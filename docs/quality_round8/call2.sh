#!/bin/bash
# Round 8, device call 2 (one GPU): the sample packed by call 1, carried as .dev_q8/gpudata (no re-simulation).
# Four fresh seeds (4-7) of the candidate default (slow centroids 0.05 + beta 10, the best of rounds 7-8 on val)
# against the current default (conf/ucluster.yaml as is), 50 epochs each, 8 runs at once: a paired comparison on
# seeds that no earlier round looked at.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q8/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.11
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu unpack --packed .dev_q8/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1 \
  || { tail -5 /tmp/unpack.log; exit 1; }
echo "unpacked $(el) s"
S="python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet --data.reader_threads 2 --train.epochs ${EPOCHS:-50}"
mkdir -p /tmp/logs
run() { name=$1; seed=$2; shift 2; $S --seeds $seed --run.output_dir /tmp/runs/${name}_$seed \
  --json /tmp/logs/${name}_s$seed.json --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1 & }
for s in 4 5 6 7; do
  run default $s ""
  run cs_beta10 $s "model.centroid_step_scale=0.05;train.beta=10"
done
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-575} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
(cd /tmp/logs && tar czf $OUT/logs2.tgz .)
