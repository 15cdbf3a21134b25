#!/bin/bash
# Device call 6 (one GPU host, 16 cores): call 5's runs were all killed in their final report (the call's 10
# minutes, shared with a 0.3 % conversion and 9 jobs). The same sample again (1 % only), fewer jobs: the widened
# pretraining grid ([0, 1000] GeV, 20 x 20 bins) at 16 clusters, seeds 1-3, and at 32 clusters, seed 1; the
# k-means baseline at 64 clusters (16 and 32 were measured in call 5).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 PYTHIA8DATA=/tmp/site/share/Pythia8/xmldoc
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
A="python3 -m studies.anomaly_gpu"
$A simulate --out /tmp/h5 --qcd 104000 --wprime 2000 --signal wprime_xy --processes 16 --seconds ${SIM_S:-225} 2>&1 | grep -v "^#"
echo "simulated at $(el) s"
$A convert --h5 /tmp/h5 --fraction 0.01 --out /tmp/ev100.parquet --processes 16 2>&1 | grep -v "^#"
echo "converted 1 % at $(el) s"
mkdir -p /tmp/logs
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.18
T="$A train --train.epochs ${EPOCHS:-50} --data.reader_threads 2 --model.target_jet_mass_max 1000 --model.target_bins 20,20"
run() { name=$1; seed=$2; shift 2; $T --data /tmp/ev100.parquet --seeds $seed --name $name "$@" \
  --json /tmp/logs/${name}_s$seed.json > /tmp/logs/${name}_s$seed.log 2>&1 & }
for s in 1 2 3; do run r1000b20 $s; done
run r1000b20k32 1 --model.n_clusters 32
$A baseline --data /tmp/ev100.parquet --clusters 64 --json /tmp/logs/baseline100_k64.json > /tmp/logs/baseline100_k64.log 2>&1 &
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-585} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end at $(el) s"
grep -h "^ANOMALY\|^BASELINE\|Error\|error" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs; last: $(grep ^EPOCH $f | tail -1)"; done
(cd /tmp/logs && tar czf $OUT/anomaly_logs6.tgz .)
