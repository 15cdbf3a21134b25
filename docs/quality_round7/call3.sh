#!/bin/bash
# Device call 3 of round 7 (one GPU): the same carried sample. Call 2: beta 10 with slow centroids was the best
# variant (test 0.728 / 0.723, selected at the last epoch, still rising). Here 75 epochs (20 pretraining):
# beta 10 over 3 seeds, beta 30 over 3 seeds, beta 10 with default-speed centroids (is the slow step what makes
# a large beta stable?), beta 100.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_multigpu/.whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.11
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu unpack --packed .dev_q4/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1 \
  || { tail -5 /tmp/unpack.log; exit 1; }
echo "unpacked $(el) s"
S="python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet --data.reader_threads 2 --train.epochs ${EPOCHS:-75}"
mkdir -p /tmp/logs
run() { name=$1; seed=$2; shift 2; $S --seeds $seed --run.output_dir /tmp/runs/${name}_$seed \
  --json /tmp/logs/${name}_s$seed.json --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1 & }
CS="model.centroid_step_scale=0.05"
for s in 1 2 3; do
  run cs_beta10 $s "$CS;train.beta=10"
  run cs_beta30 $s "$CS;train.beta=30"
done
run beta10 1 "train.beta=10"
run cs_beta100 1 "$CS;train.beta=100"
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-560} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
(cd /tmp/logs && tar czf $OUT/logs3.tgz .)
