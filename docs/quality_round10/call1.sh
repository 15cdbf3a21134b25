#!/bin/bash
# Round 10, device call 1 (one GPU): the round-8 packed sample (.dev_q8/gpudata), 50 epochs (20 pretraining),
# the round-8 default clustering (beta 10, slow centroids), seed 1 each: a screen for a gain of several points
# (compare: the default at 50 epochs, seed 1: val 0.724, test 0.728; seed-to-seed spread about 1 point).
# - label-free targets beyond the ungroomed mass, re-measured since the k-means-sample fix (commit 6524a0f:
#   rounds 3-5 compared targets from a k-means init fitted on one or two classes): 48 soft-drop mass bins of
#   5 GeV (W and Z peaks in different bins), joint grids of the mass with tau32 and with tau21 x tau32;
# - the self-supervised term (model.ssl_weight: SwAV-style swapped prediction between two augmented views):
#   alone (model.target none), and beside the mass bins with weight 1 and 0.3.
# 6 runs at once; a self-supervised run costs about two of the others (two views per jet).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q8/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.15
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu unpack --packed .dev_q8/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1 \
  || { tail -5 /tmp/unpack.log; exit 1; }
echo "unpacked $(el) s"
S="python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet --data.reader_threads 2 --train.epochs ${EPOCHS:-50}"
mkdir -p /tmp/logs
run() { name=$1; seed=$2; shift 2; $S --seeds $seed --run.output_dir /tmp/runs/${name}_$seed \
  --json /tmp/logs/${name}_s$seed.json --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1 & }
for s in ${SEEDS:-1}; do
  run ssl_only $s "model.target=none;model.ssl_weight=1.0"
  run mb_ssl1 $s "model.ssl_weight=1.0"
  run mb_ssl03 $s "model.ssl_weight=0.3"
  run msd48 $s "model.target=mass_sd_bins;model.mass_bins=48"
  run m_t32 $s "model.target=joint_bins;model.target_vars=mass,tau32;model.target_bins=20,3"
  run m_t21_t32 $s "model.target=joint_bins;model.target_vars=mass,tau21,tau32;model.target_bins=20,3,3"
done
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-500} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; grep -h "Error\|error:" $f | tail -2; done
(cd /tmp/logs && tar czf $OUT/logs1.tgz .)
