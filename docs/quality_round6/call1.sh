#!/bin/bash
# Device call (one H200, 16 cores): the round-3/4/5 study sample re-simulated (same command and seeds), converted,
# references; then the default (centroid_step_scale 1) against centroid_step_scale 0.05 (the CPU winner of
# round 5), seeds 1-3 each, 50 epochs (20 pretraining), 6 runs at once; the sample packed for call 2.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_anomaly/wheels/*.whl .dev_multigpu/.whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 PYTHIA8DATA=/tmp/site/share/Pythia8/xmldoc
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu simulate --out /tmp/h5 --kinds w,z,t --jets-per-kind 40000 --seed 11 \
  --jets-per-task 1000 --procs 16 > /tmp/sim.log 2>&1; echo "simulate rc=$? $(el) s"
grep -E "jets, median|failed" /tmp/sim.log
python3 -m conversion.job --input /tmp/h5 --output /tmp/big.parquet --local --processes 16 2>&1 | grep -v "it/s\|s/it" | tail -3
echo "convert done $(el) s"
(python3 -m jobs.baselines --data /tmp/big.parquet > $OUT/baselines.json.txt 2>/tmp/baselines.err) &
# the sample packed for a later call (carried back as .dev_q4/.gpudata: no second simulation)
(python3 -m studies.quality_gpu pack --data /tmp/big.parquet --out /tmp/gpudata --part-mb 200 > /tmp/pack.log 2>&1 &&
  cd /tmp && tar cf - gpudata | split -b 15M - $OUT/gpudata.tar.) &
S="python3 -m studies.quality_gpu sweep --data /tmp/big.parquet --data.reader_threads 2 --train.epochs ${EPOCHS:-50}"
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.14
mkdir -p /tmp/logs
run() { name=$1; seed=$2; shift 2; $S --seeds $seed --json /tmp/logs/${name}_s$seed.json --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1 & }
for s in 1 2 3; do
  run default $s ""
  run cscale $s "model.centroid_step_scale=0.05"
done
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-580} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
tail -3 /tmp/baselines.err
(cd /tmp/logs && tar czf $OUT/logs.tgz .)
