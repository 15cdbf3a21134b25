#!/bin/bash
# Device call (one H200 host, 16 cores): >= 100 k QCD + the LHCO-mass signal W' -> X(500) Y(100) -> 4q
# (ucluster/sim/pythia_events.py, kind wprime_xy); convert at 1 %, 0.3 %, 0.1 % injected; UCluster
# (conf/anomaly.yaml, JAX engine, 50 epochs) seeds 1-3 at 1 %, seed 1 at 0.3 % and 0.1 %; k-means baseline beside.
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
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.15
T="$A train --train.epochs ${EPOCHS:-50} --data.reader_threads 2"
$T --data /tmp/ev100.parquet --seeds 1 --name xy100_k16 --baseline --json /tmp/logs/xy100_k16_s1.json > /tmp/logs/xy100_k16_s1.log 2>&1 &
$T --data /tmp/ev100.parquet --seeds 2 --name xy100_k16 --json /tmp/logs/xy100_k16_s2.json > /tmp/logs/xy100_k16_s2.log 2>&1 &
$T --data /tmp/ev100.parquet --seeds 3 --name xy100_k16 --json /tmp/logs/xy100_k16_s3.json > /tmp/logs/xy100_k16_s3.log 2>&1 &
for f in 0.003 0.001; do
  tag=$(python3 -c "print(int(round($f*10000)))")
  $A convert --h5 /tmp/h5 --fraction $f --out /tmp/ev$tag.parquet --processes 8 2>&1 | grep -v "^#"
  echo "converted $f at $(el) s"
  $T --data /tmp/ev$tag.parquet --seeds 1 --name xy${tag}_k16 --baseline --json /tmp/logs/xy${tag}_k16_s1.json > /tmp/logs/xy${tag}_k16_s1.log 2>&1 &
done
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-585} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end at $(el) s"
grep -h "^ANOMALY\|^BASELINE\|Error\|error" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs; last: $(grep ^EPOCH $f | tail -1)"; done
(cd /tmp/logs && tar czf $OUT/anomaly_logs.tgz .)
