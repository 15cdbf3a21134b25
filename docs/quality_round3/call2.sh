#!/bin/bash
# Device call 2: the packed sample of call 1 (carried), default config x 3 seeds, supervised x 2, one beta point.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.14
t0=$(date +%s)
(cd /tmp && cat $OLDPWD/.gpudata/gpudata.tar.* | tar xf -) && python3 -m studies.quality_gpu unpack --packed /tmp/gpudata --out /tmp/jets.parquet || exit 1
echo "unpacked $(( $(date +%s) - t0 )) s"
S="python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet --data.reader_threads 2"
mkdir -p /tmp/logs
run() { name=$1; shift; $S --json /tmp/logs/$name.json "$@" > /tmp/logs/$name.log 2>&1 & }
for s in 1 2 3; do run default_s$s --seeds $s --variant "default:"; done
for s in 1 2; do run sup_s$s --seeds $s --train.epochs 30 --train.pretrain_epochs 30 --model.target truth --variant "sup:"; done
run beta3_s1 --seeds 1 --train.epochs 50 --variant "beta3:train.beta=3.0"
while [ -n "$(jobs -rp)" ] && [ $(( $(date +%s) - t0 )) -lt ${LIMIT:-500} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
grep -h "^ROW" /tmp/logs/*.log
(cd /tmp/logs && tar czf $OUT/logs2.tgz .)
