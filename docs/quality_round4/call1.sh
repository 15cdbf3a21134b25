#!/bin/bash
# Device call 1 (one H200, 16 cores): simulate the study sample (the round-3 command and seeds), convert, references,
# pack it for call 2, then the cluster-size balance term against the default (seeds 1, 2; 60 epochs; 8 runs at once).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_anomaly/wheels/*.whl .dev_multigpu/.whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 PYTHIA8DATA=/tmp/site/share/Pythia8/xmldoc
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu simulate --out /tmp/h5 --kinds w,z,t --jets-per-kind 40000 --seed 11 \
  --jets-per-task 1000 --procs 16 > /tmp/sim.log 2>&1; echo "simulate rc=$? $(el) s"
grep -E "jets, median|failed" /tmp/sim.log
python3 -m conversion.job --input /tmp/h5 --output /tmp/big.parquet --local --processes 16 2>&1 | grep -v "it/s\|s/it" | tail -4
echo "convert done $(el) s"
(python3 -m jobs.baselines --data /tmp/big.parquet > $OUT/baselines.json.txt 2>/tmp/baselines.err) &
python3 -m studies.quality_gpu pack --data /tmp/big.parquet --out /tmp/gpudata --part-mb 200 > /tmp/pack.log 2>&1
(cd /tmp && tar cf - gpudata | split -b 15M - $OUT/gpudata.tar.)
echo "packed $(el) s"
S="python3 -m studies.quality_gpu sweep --data /tmp/big.parquet --data.reader_threads 2 --train.epochs ${EPOCHS:-60}"
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.11
mkdir -p /tmp/logs
run() { name=$1; seed=$2; shift 2; $S --seeds $seed --json /tmp/logs/${name}_s$seed.json --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1 & }
for s in 1 2; do
  run default $s ""
  run bal01 $s "train.balance=0.1"
  run bal1 $s "train.balance=1.0"
  run bal1_msd $s "train.balance=1.0;model.target=mass_sd_bins"
done
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-585} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
tail -3 /tmp/baselines.err
(cd /tmp/logs && tar czf $OUT/logs1.tgz .)
