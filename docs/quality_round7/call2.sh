#!/bin/bash
# Device call 2 of round 7 (one GPU): the same carried sample. After call 1 (beta 3 best on val with slow centroids):
# the third seed of the base and of beta 3; beta 10; beta 3 with a joint (m x m_SD, 10 x 10) target, which lets the
# latent hold the groomed mass (sharper W/Z peaks) beside the ungroomed one; beta 3 with a 64-d latent. 50 epochs.
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_multigpu/.whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.11
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu unpack --packed .dev_q4/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1 \
  || { tail -5 /tmp/unpack.log; exit 1; }
echo "unpacked $(el) s"
S="python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet --data.reader_threads 2 --train.epochs ${EPOCHS:-50}"
mkdir -p /tmp/logs
run() { name=$1; seed=$2; shift 2; $S --seeds $seed --run.output_dir /tmp/runs/${name}_$seed \
  --json /tmp/logs/${name}_s$seed.json --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1 & }
CS="model.centroid_step_scale=0.05"
run cs 3 "$CS"
run cs_beta3 3 "$CS;train.beta=3"
for s in 1 2; do
  run cs_beta10 $s "$CS;train.beta=10"
  run cs_beta3_mmsd $s "$CS;train.beta=3;model.target=joint_bins;model.target_vars=mass,mass_sd;model.target_bins=10,10"
  run cs_beta3_lat64 $s "$CS;train.beta=3;model.latent_dim=64"
done
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-560} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/*.log; do echo "$f: $(grep -c ^EPOCH $f) epochs"; done
(cd /tmp/logs && tar czf $OUT/logs2.tgz .)
