#!/bin/bash
# Round 15, device call 2 (one GPU): the new label-free pretraining target, bins of the hybrid mass (m_SD where
# soft drop keeps at least half of the jet mass, else m; model.target mass_hybrid_bins), on call 1's sample,
# 50 epochs of which 20 pretraining, alpha_start 10 as the study default (call 1's a10 runs are the reference).
#   hyb_log      (seeds 1-3): 20 log-spaced bins
#   hyb_log_tgt  (seeds 1-2): the same, k-means init on the classifier's expected bin (train.kmeans_space target)
#   hyb_lin      (seed 1):    20 equal-width bins in GeV
#   hyb_log_b40  (seed 1):    40 log-spaced bins
#   mlog         (seed 1):    the default target (ungroomed m) in 20 log-spaced bins
# Carry: .dev_q15 (whl/: keras, namex, optree; gpudata.tar.xz: call 1's packed sample with its float16
# particles in byte planes, planes.py).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q15/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
rm -rf /tmp/logs /tmp/runs
[ -d /tmp/jets.parquet ] || { mkdir -p /tmp/planes && tar xJf .dev_q15/gpudata.tar.xz -C /tmp/planes && \
  python3 docs/quality_round15/planes.py decode /tmp/planes/gpudata /tmp/gpudata && \
  python3 -m studies.quality_gpu unpack --packed /tmp/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1; } \
  || { tail -5 /tmp/unpack.log; exit 1; }
echo "unpacked $(el) s"
mkdir -p /tmp/logs
train() { name=$1; seed=$2; shift 2; python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet \
    --data.reader_threads 1 --seeds $seed --run.output_dir /tmp/runs/${name}_$seed --json /tmp/logs/${name}_s$seed.json \
    --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1; }
B="train.epochs=50;train.alpha_start=10"
H="$B;model.target=mass_hybrid_bins"
# RUNS: name:seeds items (default: all of the above)
for item in ${RUNS:-hyb_log:1,2,3 hyb_log_tgt:1,2 hyb_lin:1 hyb_log_b40:1 mlog:1}; do
  name=${item%%:*}
  for seed in $(echo ${item#*:} | tr , ' '); do
    case $name in
      hyb_log) train $name $seed "$H;model.mass_bin_spacing=log" & ;;
      hyb_log_tgt) train $name $seed "$H;model.mass_bin_spacing=log;train.kmeans_space=target" & ;;
      hyb_lin) train $name $seed "$H" & ;;
      hyb_log_b40) train $name $seed "$H;model.mass_bin_spacing=log;model.mass_bins=40" & ;;
      mlog) train $name $seed "$B;model.mass_bin_spacing=log" & ;;
      *) echo "unknown run '$name'"; exit 2 ;;
    esac
  done
done
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-560} ]; do
  sleep 3; [ $(( $(el) % 30 )) -lt 3 ] && (cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs.tgz)
done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
(cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs.tgz)
