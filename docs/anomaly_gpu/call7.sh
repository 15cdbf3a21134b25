#!/bin/bash
# Device call 7 (the session's last ~4 device minutes; one GPU host's 16 CPU cores, no GPU used): is the k-means
# baseline's enrichment at 32 / 64 clusters (call 5-6: 25 % / 40-44 %, in sample on the training events) real on
# events the fit never saw? Half the call-5 sample (52 000 QCD + 1 000 X(500) Y(100), same generator; 1 %
# injected), the baseline fitted on train, the train-chosen cluster scored on test (studies/anomaly_gpu.py baseline).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 PYTHIA8DATA=/tmp/site/share/Pythia8/xmldoc
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
A="python3 -m studies.anomaly_gpu"
$A simulate --out /tmp/h5 --qcd 52000 --wprime 1000 --signal wprime_xy --processes 16 --seconds ${SIM_S:-110} 2>&1 | grep -v "^#"
echo "simulated at $(el) s"
$A convert --h5 /tmp/h5 --fraction 0.01 --out /tmp/ev100.parquet --processes 16 2>&1 | grep -v "^#"
echo "converted 1 % at $(el) s"
$A baseline --data /tmp/ev100.parquet --clusters 64,32 --seeds 3 --json $OUT/baseline_test.json 2>&1
echo "end at $(el) s"
