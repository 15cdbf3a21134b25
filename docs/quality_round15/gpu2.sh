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
# particles in byte planes, planes.py). A fresh checkout has neither (ignored files do not outlive a session):
#   echo /.dev_q15/ >> .git/info/exclude; python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .dev_q15/whl \
#     keras==3.15.1 namex==0.1.0 optree==0.20.0 pythia8mc==8.317.2 fastjet==3.5.2.0 awkward==2.14.0 \
#     awkward_cpp==57 vector==1.9.0
# Without gpudata.tar.xz the call re-simulates the sample as gpu1.sh does (about 260 s on 16 cores, with the
# pythia8mc/fastjet/awkward/vector wheels); with it, those four wheels can stay behind (the 64 MiB limit).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q15/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
rm -rf /tmp/logs /tmp/runs
if [ ! -d /tmp/jets.parquet ] && [ -f .dev_q15/gpudata.tar.xz ]; then
  { mkdir -p /tmp/planes && tar xJf .dev_q15/gpudata.tar.xz -C /tmp/planes && \
    python3 docs/quality_round15/planes.py decode /tmp/planes/gpudata /tmp/gpudata && \
    python3 -m studies.quality_gpu unpack --packed /tmp/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1; } \
    || { tail -5 /tmp/unpack.log; exit 1; }
elif [ ! -d /tmp/jets.parquet ]; then  # round 8's sample again, as gpu1.sh
  PYTHIA8DATA=/tmp/site/share/Pythia8/xmldoc python3 -m studies.quality_gpu simulate --out /tmp/h5 --kinds w,z,t \
    --jets-per-kind 40000 --seed 11 --jets-per-task 1000 --procs 16 > /tmp/sim.log 2>&1 || { tail -5 /tmp/sim.log; exit 1; }
  python3 -m conversion.job --input /tmp/h5 --output /tmp/jets.parquet --local --processes 16 > /tmp/convert.log 2>&1 \
    || { tail -5 /tmp/convert.log; exit 1; }
  # packed back (as gpu1.sh) so that a later call can skip the simulation
  (python3 -m studies.quality_gpu pack --data /tmp/jets.parquet --out /tmp/gpudata --part-mb 200 > /tmp/pack.log 2>&1 \
    && cd /tmp && tar cf - gpudata | split -b 15M - $OUT/gpudata.tar.) &
fi
echo "data ready $(el) s"
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
tail -2 /tmp/pack.log 2>/dev/null
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
(cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs.tgz)
