#!/bin/bash
# Round 16, device call 1 (one GPU). Round 15's gpu2.sh found the hybrid-mass target far below the default on the
# paper-size network (0.62 against 0.73; W and Z purity near 0.5). This call tests whether the k-means start is
# the cause: k-means on the classifier's expected hybrid bin (train.kmeans_space target, ~ a 1D k-means on the
# predicted log hybrid mass) instead of on the 256-d latent; and keeps the final models of a hybrid and a default
# run for a look at what the clusters hold (docs/quality_round16/composition.py, on the CPU).
#   hyb_tgt      (seeds 1-3): hybrid bins (20, log), k-means init on the expected bin
#   hyb_tgt_s1   (seed 1):    the same with bin smoothing 1 (a smoother expected bin)
#   hyb_tgt_b40  (seed 1):    the same with 40 bins
#   m_tgt        (seed 1):    the default target (m bins), k-means init on the expected bin
#   hyb_log      (seed 1):    round 15's hybrid run again (init on the latent), its model kept
#   a10          (seed 1):    the default config (as round 15's gpu1.sh), its model kept
# All 50 epochs of which 20 pretraining, alpha_start 10, on round 8's sample (the one gpu2.sh re-simulated and
# packed back). Carry: .dev_q16 (whl/: keras 3.15.1, namex 0.1.0, optree 0.20.0; gpudata.tar.xz: gpu2.sh's
# packed sample, its float16 particles in byte planes (quality_round15/planes.py), 47.8 MB with xz -6; the
# tracked tree, 8.5 MB, travels too: 64 MiB in all). A fresh checkout has neither: the wheels as in
# quality_round15/gpu2.sh's header; the sample from that script's call (it packs when it re-simulates).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q16/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
rm -rf /tmp/logs /tmp/runs /tmp/gpudata /tmp/planes /tmp/jets.parquet
{ mkdir -p /tmp/planes && tar xJf .dev_q16/gpudata.tar.xz -C /tmp/planes && \
  python3 docs/quality_round15/planes.py decode /tmp/planes/gpudata /tmp/gpudata && \
  python3 -m studies.quality_gpu unpack --packed /tmp/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1; } \
  || { tail -5 /tmp/unpack.log; exit 1; }
echo "data ready $(el) s"
mkdir -p /tmp/logs
train() { name=$1; seed=$2; shift 2; python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet \
    --data.reader_threads 1 --seeds $seed --run.output_dir /tmp/runs/${name}_$seed --json /tmp/logs/${name}_s$seed.json \
    --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1; }
B="train.epochs=50;train.alpha_start=10"
H="$B;model.target=mass_hybrid_bins;model.mass_bin_spacing=log"
T="train.kmeans_space=target"
for seed in 1 2 3; do train hyb_tgt $seed "$H;$T" & done
train hyb_tgt_s1 1 "$H;$T;model.bin_smoothing=1.0" &
train hyb_tgt_b40 1 "$H;$T;model.mass_bins=40" &
train m_tgt 1 "$B;$T" &
train hyb_log 1 "$H" &
train a10 1 "$B" &
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-540} ]; do
  sleep 3; [ $(( $(el) % 30 )) -lt 3 ] && (cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs.tgz)
done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
(cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs.tgz)
mkdir -p $OUT/models && for d in /tmp/runs/hyb_log_1/* /tmp/runs/a10_1/*; do
  [ -f $d/model.keras ] && cp $d/model.keras $OUT/models/$(basename $(dirname $d)).keras; done
ls -la $OUT/models
