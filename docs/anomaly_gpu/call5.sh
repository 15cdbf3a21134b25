#!/bin/bash
# Device call 5 (one GPU host, 16 cores): the sample of call2/call4 again (same kinds, counts and seeds;
# W' -> X(500) Y(100) at 1 % and 0.3 %). The pretraining grid of conf/anomaly.yaml binned the jet masses over
# [0, 500] GeV, so every heavier jet above 450 GeV (the X(500) jets among them) shared one edge bin: the grid is
# widened to [0, 1000] GeV (20 x 20 bins of 50 GeV; and 10 x 10), slow centroids as in call 4; 16, 32 and 64
# clusters. Beside it the k-means baseline at 16 / 32 / 64 clusters and the jet-mass quantiles of all training
# events (the label-free way to choose the range).
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
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.12
T="$A train --train.epochs ${EPOCHS:-50} --data.reader_threads 2 --model.target_jet_mass_max 1000"
run() { name=$1; data=$2; seed=$3; shift 3; $T --data $data --seeds $seed --name $name "$@" \
  --json /tmp/logs/${name}_s$seed.json > /tmp/logs/${name}_s$seed.log 2>&1 & }
for s in 1 2 3; do run r1000b20 /tmp/ev100.parquet $s --model.target_bins 20,20; done
run r1000b20k32 /tmp/ev100.parquet 1 --model.target_bins 20,20 --model.n_clusters 32
run r1000b20k64 /tmp/ev100.parquet 1 --model.target_bins 20,20 --model.n_clusters 64
run r1000b10 /tmp/ev100.parquet 1 --model.target_bins 10,10
$A baseline --data /tmp/ev100.parquet --clusters 16,32,64 --json /tmp/logs/baseline100.json > /tmp/logs/baseline100.log 2>&1 &
$A convert --h5 /tmp/h5 --fraction 0.003 --out /tmp/ev30.parquet --processes 8 2>&1 | grep -v "^#"
echo "converted 0.3 % at $(el) s"
run r1000b20_30 /tmp/ev30.parquet 1 --model.target_bins 20,20
$A baseline --data /tmp/ev30.parquet --clusters 16,32,64 --json /tmp/logs/baseline30.json > /tmp/logs/baseline30.log 2>&1 &
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-585} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end at $(el) s"
grep -h "^ANOMALY\|^BASELINE\|^QUANTILES\|Error\|error" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs; last: $(grep ^EPOCH $f | tail -1)"; done
(cd /tmp/logs && tar czf $OUT/anomaly_logs5.tgz .)
