#!/bin/bash
# Round 8, device call 1 (one GPU, 16 cores): the round-3..7 study sample re-simulated (same command and seeds,
# the same 91 402 training / 11 447 test jets after the selection), converted, references, and packed for call 2.
# Then six 50-epoch runs side by side around round 7's best (slow centroids, model.centroid_step_scale 0.05, with
# train.beta 10: test 0.728 / 0.723 on seeds 1-2, still rising at the last epoch): its third seed, beta 30 (seeds
# 1-2), beta 100, beta 10 with full-speed centroids, beta 10 without the balance term.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 PYTHIA8DATA=/tmp/site/share/Pythia8/xmldoc
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu simulate --out /tmp/h5 --kinds w,z,t --jets-per-kind 40000 --seed 11 \
  --jets-per-task 1000 --procs 16 > /tmp/sim.log 2>&1; echo "simulate rc=$? $(el) s"
grep -E "jets, median|failed" /tmp/sim.log
python3 -m conversion.job --input /tmp/h5 --output /tmp/big.parquet --local --processes 16 2>&1 | grep -v "it/s\|s/it" | tail -3
echo "convert done $(el) s"
(python3 -m jobs.baselines --data /tmp/big.parquet > $OUT/baselines.json.txt 2>/tmp/baselines.err) &
(python3 -m studies.quality_gpu pack --data /tmp/big.parquet --out /tmp/gpudata --part-mb 200 > /tmp/pack.log 2>&1 &&
  cd /tmp && tar cf - gpudata | split -b 15M - $OUT/gpudata.tar.) &
S="python3 -m studies.quality_gpu sweep --data /tmp/big.parquet --data.reader_threads 2 --train.epochs ${EPOCHS:-50}"
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.14
mkdir -p /tmp/logs
run() { name=$1; seed=$2; shift 2; $S --seeds $seed --run.output_dir /tmp/runs/${name}_$seed \
  --json /tmp/logs/${name}_s$seed.json --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1 & }
CS="model.centroid_step_scale=0.05"
run cs_beta10 3 "$CS;train.beta=10"
run cs_beta30 1 "$CS;train.beta=30"
run cs_beta30 2 "$CS;train.beta=30"
run cs_beta100 1 "$CS;train.beta=100"
run beta10 1 "train.beta=10"
run cs_beta10_bal0 1 "$CS;train.beta=10;train.balance=0"
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-585} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
tail -3 /tmp/baselines.err; tail -2 /tmp/pack.log
(cd /tmp/logs && tar czf $OUT/logs.tgz .)
