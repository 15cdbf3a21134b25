#!/bin/bash
# Round 10, device call 3 (one GPU): the latents of two pretrained models, for clustering studies on the CPU.
# Call 2 found that after pretraining the latent holds far more class information (linear probe with the labels:
# 0.78 mass bins, 0.79 joint m x tau21 x tau32) than k-means reads from it (0.67-0.68). Same trainings as call 2
# (seed 1, pretraining only), then studies/latent_probe.py --dump: float16 latents of 20 000 training jets and of
# every val and test jet, with labels and jet observables (two files per model, under the 16 MiB return limit).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q8/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.3
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu unpack --packed .dev_q8/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1 \
  || { tail -5 /tmp/unpack.log; exit 1; }
echo "unpacked $(el) s"
S="python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet --data.reader_threads 2"
mkdir -p /tmp/logs
run() { name=$1; shift; ( $S --seeds 1 --run.output_dir /tmp/runs/$name --json /tmp/logs/$name.json \
    --variant "$name:$*" > /tmp/logs/$name.log 2>&1 \
  && python3 -m studies.latent_probe --model /tmp/runs/$name/${name}_seed1/model.keras --data /tmp/jets.parquet \
    --train-jets 20000 --dims 5,16,32 --dump $OUT/$name > /tmp/logs/probe_$name.log 2>&1 ) & }
run pre20 "train.epochs=20"
run t21t32_20 "train.epochs=20;model.target=joint_bins;model.target_vars=mass,tau21,tau32;model.target_bins=20,3,3"
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-300} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/probe_*.log; do echo "== $f"; tail -8 $f; done
(cd /tmp/logs && tar czf $OUT/logs3.tgz .)
ls -la $OUT
