#!/bin/bash
# Device call 1 of round 7 (one GPU): the round-3..6 study sample, packed by round 6 and carried as
# .dev_q4/gpudata (no re-simulation). Slow centroids (model.centroid_step_scale 0.05) as the base, since
# they make the clustering epochs steady enough to compare variants; against it: beta 3 (a stronger clustering
# term, unstable before slow centroids), 40 mass bins (a finer mass target: bins of 6 GeV instead of 12, narrower
# than the W-Z gap) and 30 pretraining epochs instead of 20. Seeds 1-2, 50 epochs, 8 runs at once.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_multigpu/.whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.11
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu unpack --packed .dev_q4/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1 \
  || { tail -5 /tmp/unpack.log; exit 1; }
echo "unpacked $(el) s"
S="python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet --data.reader_threads 2 --train.epochs ${EPOCHS:-50}"
mkdir -p /tmp/logs
run() { name=$1; seed=$2; shift 2; $S --seeds $seed --run.output_dir /tmp/runs/${name}_$seed \
  --json /tmp/logs/${name}_s$seed.json --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1 & }
CS="model.centroid_step_scale=0.05"
for s in 1 2; do
  run cs $s "$CS"
  run cs_beta3 $s "$CS;train.beta=3"
  run cs_bins40 $s "$CS;model.mass_bins=40"
  run cs_pre30 $s "$CS;train.pretrain_epochs=30"
done
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-560} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
(cd /tmp/logs && tar czf $OUT/logs.tgz .)
