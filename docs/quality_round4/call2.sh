#!/bin/bash
# Device call 2: the packed sample of call 1 (carried); default vs train.balance=0.1, seeds 1-3, 70 epochs, 6 at once.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .dev_multigpu/.whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.14
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
(cd /tmp && cat $OLDPWD/.dev_q4/.gpudata/gpudata.tar.* | tar xf -) && python3 -m studies.quality_gpu unpack --packed /tmp/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1 || { tail -5 /tmp/unpack.log; exit 1; }
echo "unpacked $(el) s"
S="python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet --data.reader_threads 2 --train.epochs ${EPOCHS:-70}"
mkdir -p /tmp/logs
run() { name=$1; seed=$2; shift 2; $S --seeds $seed --run.output_dir /tmp/runs/${name}_$seed --json /tmp/logs/${name}_s$seed.json --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1 & }
for s in 1 2 3; do run default $s ""; run bal01 $s "train.balance=0.1"; done
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-345} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
(cd /tmp/logs && tar czf $OUT/logs2.tgz .)
