#!/bin/bash
# Device call (one GPU host, 16 cores): the sample of call2.sh again (same kinds, counts and seeds); UCluster
# (conf/anomaly.yaml, 50 epochs) with slow centroids (model.centroid_step_scale 0.05, the W/Z/t round-5/6
# finding: no cluster identity swaps) seeds 1-3 at 1 %, 0.01 seed 1 at 1 %, 0.05 seed 1 at 0.3 %.
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
for s in 1 2 3; do
  $T --data /tmp/ev100.parquet --seeds $s --name xy100_cs05 --model.centroid_step_scale 0.05 \
    --json /tmp/logs/xy100_cs05_s$s.json > /tmp/logs/xy100_cs05_s$s.log 2>&1 &
done
$T --data /tmp/ev100.parquet --seeds 1 --name xy100_cs01 --model.centroid_step_scale 0.01 \
  --json /tmp/logs/xy100_cs01_s1.json > /tmp/logs/xy100_cs01_s1.log 2>&1 &
$A convert --h5 /tmp/h5 --fraction 0.003 --out /tmp/ev30.parquet --processes 8 2>&1 | grep -v "^#"
echo "converted 0.3 % at $(el) s"
$T --data /tmp/ev30.parquet --seeds 1 --name xy30_cs05 --model.centroid_step_scale 0.05 \
  --json /tmp/logs/xy30_cs05_s1.json > /tmp/logs/xy30_cs05_s1.log 2>&1 &
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-585} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end at $(el) s"
grep -h "^ANOMALY\|^BASELINE\|Error\|error" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs; last: $(grep ^EPOCH $f | tail -1)"; done
(cd /tmp/logs && tar czf $OUT/anomaly_logs.tgz .)
