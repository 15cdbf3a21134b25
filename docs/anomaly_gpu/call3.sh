#!/bin/bash
# Device call (one H200 host, 16 cores): the sample of call2.sh again (same kinds, counts and seeds), 1 % injected;
# variants of conf/anomaly.yaml against its clustering instability (call 2: 30-99 % of the events change cluster
# every epoch): a decaying lr in the clustering phase, tau21 of the heavier jet in the target, 32 clusters.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_anomaly/wheels/*.whl .dev_multigpu/.whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 PYTHIA8DATA=/tmp/site/share/Pythia8/xmldoc
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
A="python3 -m studies.anomaly_gpu"
$A simulate --out /tmp/h5 --qcd 104000 --wprime 2000 --signal wprime_xy --processes 16 --seconds ${SIM_S:-225} 2>&1 | grep -v "^#"
echo "simulated at $(el) s"
$A convert --h5 /tmp/h5 --fraction 0.01 --out /tmp/ev100.parquet --processes 16 2>&1 | grep -v "^#"
echo "converted 1 % at $(el) s"
mkdir -p /tmp/logs
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.12
T="$A train --data /tmp/ev100.parquet --train.epochs ${EPOCHS:-50} --data.reader_threads 2"
LRD="--train.lr_restart true --train.lr_decay_every 8 --train.lr_decay_factor 0.5"
TAU="--model.target_vars m_j1,m_j2,tau21_j1 --model.target_bins 10,10,4"
for s in 1 2 3; do $T --seeds $s --name lrd $LRD --json /tmp/logs/lrd_s$s.json > /tmp/logs/lrd_s$s.log 2>&1 & done
for s in 1 2; do $T --seeds $s --name tau $TAU --json /tmp/logs/tau_s$s.json > /tmp/logs/tau_s$s.log 2>&1 & done
$T --seeds 1 --name lrd_tau $LRD $TAU --json /tmp/logs/lrd_tau_s1.json > /tmp/logs/lrd_tau_s1.log 2>&1 &
$T --seeds 1 --name k32 --model.n_clusters 32 --baseline --json /tmp/logs/k32_s1.json > /tmp/logs/k32_s1.log 2>&1 &
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-540} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end at $(el) s"
grep -h "^ANOMALY\|^BASELINE\|Error\|error" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs; last: $(grep ^EPOCH $f | tail -1)"; done
(cd /tmp/logs && tar czf $OUT/anomaly_logs.tgz .)
