#!/bin/bash
# Device call 8 (one GPU host, 16 cores): UCluster at 64 clusters, where the k-means baseline reaches 40-44 % (train)
# and 47-51 % (train-chosen cluster on test). The call-5/6 sample again (same command and seeds, 1 % injected),
# conf/anomaly.yaml with --model.n_clusters 64: the default (m_j1, m_j2) grid, seeds 1-2; tau21 of both jets added
# to the grid (10 x 10 x 3 x 3), seeds 1-2; the same with the k-means init in the target space (seed 1). The
# k-means baseline at 64 on the same events. Each UCluster row also scores its train-chosen cluster on test; the
# seed-1 runs also score plain k-means (16, 64) on their trained latent and target coordinates (--latent-kmeans).
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
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.17
T="$A train --train.epochs ${EPOCHS:-50} --data.reader_threads 2 --model.n_clusters 64"
TAU="--model.target_vars m_j1,m_j2,tau21_j1,tau21_j2 --model.target_bins 10,10,3,3"
run() { name=$1; seed=$2; shift 2; $T --data /tmp/ev100.parquet --seeds $seed --name $name "$@" \
  --json /tmp/logs/${name}_s$seed.json > /tmp/logs/${name}_s$seed.log 2>&1 & }
run k64 1 --latent-kmeans 16,64
run k64 2
run k64tau 1 $TAU --latent-kmeans 16,64
run k64tau 2 $TAU
run k64tau_tspace 1 $TAU --train.kmeans_space target
$A baseline --data /tmp/ev100.parquet --clusters 64 --json /tmp/logs/baseline_k64.json > /tmp/logs/baseline_k64.log 2>&1 &
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-585} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end at $(el) s"
grep -h "^ANOMALY\|^LATENT_KMEANS\|^BASELINE\|Error\|error" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs; last: $(grep ^EPOCH $f | tail -1)"; done
(cd /tmp/logs && tar czf $OUT/anomaly_logs8.tgz .)
