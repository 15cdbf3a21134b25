#!/bin/bash
# Device call 1 (one H200, 16 cores): simulate the study sample, convert, references, pack it for later calls,
# then a first sweep of the pretraining / k-means-init variants (seed 1, 50 epochs, 8 runs side by side).
set -u
W=${W:-.}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $W/.whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 PYTHIA8DATA=/tmp/site/share/Pythia8/xmldoc
nproc; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
t0=$(date +%s)
python3 -m studies.quality_gpu simulate --out /tmp/h5 --kinds w,z,t --jets-per-kind 40000 --seed 11 \
  --jets-per-task 1000 --procs 16 > /tmp/sim.log 2>&1; echo "simulate rc=$? $(( $(date +%s) - t0 )) s"
grep -E "jets, median|failed" /tmp/sim.log
python3 -m conversion.job --input /tmp/h5 --output /tmp/big.parquet --local 2>&1 | tail -4
echo "convert done $(( $(date +%s) - t0 )) s"
(python3 -m jobs.baselines --data /tmp/big.parquet > $OUT/baselines.json.txt 2>/tmp/baselines.err) &
python3 -m studies.quality_gpu pack --data /tmp/big.parquet --out /tmp/gpudata --part-mb 200
(cd /tmp && tar cf - gpudata | split -b 15M - $OUT/gpudata.tar.)
ls -la $OUT; echo "packed $(( $(date +%s) - t0 )) s"
S="python3 -m studies.quality_gpu sweep --data /tmp/big.parquet --data.reader_threads 2 --seeds 1 --train.epochs 50"
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.11
mkdir -p /tmp/logs
run() { name=$1; shift; $S --json /tmp/logs/$name.json --variant "$name:$*" > /tmp/logs/$name.log 2>&1 & }
run default ""
run mb_tgt "train.kmeans_space=target"
run sdtau "model.target=joint_bins"
run sdtau_tgt "model.target=joint_bins;train.kmeans_space=target"
run all4 "model.target=joint_bins;model.target_vars=mass,mass_sd,tau21,tau32;model.target_bins=5,5,3,3"
run all4_tgt "model.target=joint_bins;model.target_vars=mass,mass_sd,tau21,tau32;model.target_bins=5,5,3,3;train.kmeans_space=target"
run msd_tgt "model.target=mass_sd_bins;train.kmeans_space=target"
run mtau_tgt "model.target=joint_bins;model.target_vars=mass,tau21,tau32;model.target_bins=10,3,3;train.kmeans_space=target"
left=$(( 575 - ($(date +%s) - t0) ))
echo "training with $left s left"
while [ -n "$(jobs -rp)" ] && [ $(( $(date +%s) - t0 )) -lt 570 ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
grep -h "^ROW" /tmp/logs/*.log
cat /tmp/baselines.err | tail -3
(cd /tmp/logs && tar czf $OUT/logs1.tgz .)
ls -la $OUT
