#!/bin/bash
# Round 15, device call 1 (one GPU, 16 cores). This session's checkout had lost round 14's local carry (the packed
# sample), so the round-8 study sample is re-simulated here with round 8's command and seeds (call1.sh there:
# 40 000 jets per kind, base seed 11), converted, its baselines recomputed (a check that it is the same sample:
# round 8's baselines.json.txt) and packed back for later calls. Then, on the converted dataset, the runs that
# rounds 13-14 asked for, none of which has run since round 13's fix of the class-skewed capped read:
#   a10:   the study default (50 epochs, alpha_start 10), seeds 1-4
#   sup30: the supervised ceiling (30 epochs, lr halved every 10), seed 1
# Carry: .dev_q15 (whl/: keras, namex, optree, pythia8mc, fastjet, awkward, awkward_cpp, vector for cp312).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q15/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false \
  PYTHIA8DATA=/tmp/site/share/Pythia8/xmldoc
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu simulate --out /tmp/h5 --kinds w,z,t --jets-per-kind 40000 --seed 11 \
  --jets-per-task 1000 --procs 16 > /tmp/sim.log 2>&1; echo "simulate rc=$? $(el) s"
grep -E "jets, median|failed" /tmp/sim.log
python3 -m conversion.job --input /tmp/h5 --output /tmp/jets.parquet --local --processes 16 2>&1 \
  | grep -v "it/s\|s/it" | tail -3
echo "convert done $(el) s"
(python3 -m jobs.baselines --data /tmp/jets.parquet > $OUT/baselines.json.txt 2>/tmp/baselines.err) &
(python3 -m studies.quality_gpu pack --data /tmp/jets.parquet --out /tmp/gpudata --part-mb 200 > /tmp/pack.log 2>&1 \
  && cd /tmp && tar cf - gpudata | split -b 15M - $OUT/gpudata.tar.) &
mkdir -p /tmp/logs
train() { name=$1; seed=$2; shift 2; python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet \
    --data.reader_threads 1 --seeds $seed --run.output_dir /tmp/runs/${name}_$seed --json /tmp/logs/${name}_s$seed.json \
    --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1; }
SUP="train.epochs=30;train.pretrain_epochs=30;model.target=truth;train.lr_decay_factor=0.5;train.lr_decay_every=10"
for seed in 1 2 3 4; do train a10 $seed "train.epochs=50;train.alpha_start=10" & done
train sup30 1 "$SUP" &
# the logs go to $OUT every 30 s, so a call cut short still returns the epochs run so far
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-560} ]; do
  sleep 3; [ $(( $(el) % 30 )) -lt 3 ] && (cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs.tgz)
done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
tail -3 /tmp/baselines.err; tail -2 /tmp/pack.log
(cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs.tgz)
