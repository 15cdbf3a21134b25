#!/bin/bash
# Round 8, device call 4 (one GPU): the sample packed by call 1 (.dev_q8/gpudata). Variations around the new
# default (beta 10, centroid_step_scale 0.05), 50 epochs, seeds 1-2 each (compare: the default at 50 epochs,
# val 0.724 / 0.719, test 0.728 / 0.723 on seeds 1-2): k-means init from the classifier's expected bin coordinates,
# Gaussian-smoothed (ordinal) mass-bin targets, a slower hardening of the assignment (alpha + 0.5 per epoch).
# 6 runs at once (the session's last device minutes).
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
for s in 1 2; do
  run kspace_target $s "train.kmeans_space=target"
  run smooth1 $s "model.bin_smoothing=1.0"
  run alpha05 $s "train.alpha_step=0.5"
done
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-330} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
(cd /tmp/logs && tar czf $OUT/logs4.tgz .)
