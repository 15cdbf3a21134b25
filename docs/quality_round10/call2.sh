#!/bin/bash
# Round 10, device call 2 (one GPU): where is the accuracy lost, in the latent or in clustering it? Four trainings
# on the round-8 packed sample, seed 1, then studies/latent_probe.py on each saved model (linear probe with the
# labels = class information in the latent; k-means / Gaussian mixture on the latent and its principal components):
#   pre20:     the default config stopped after its 20 pretraining epochs (mass bins; k-means init = its clusters)
#   default50: the default config, 50 epochs (20 pretraining + 30 deep k-means), the clustering epoch best on val
#   t21t32_20: the joint m x tau21 x tau32 grid (20 x 3 x 3), pretraining only
#   sup30:     the same network on the true labels, 30 epochs, lr halved every 10 (a steadier last epoch)
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q8/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.2
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu unpack --packed .dev_q8/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1 \
  || { tail -5 /tmp/unpack.log; exit 1; }
echo "unpacked $(el) s"
S="python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet --data.reader_threads 2"
mkdir -p /tmp/logs
run() { name=$1; shift; ( $S --seeds 1 --run.output_dir /tmp/runs/$name --json /tmp/logs/$name.json \
    --variant "$name:$*" > /tmp/logs/$name.log 2>&1 \
  && python3 -m studies.latent_probe --model /tmp/runs/$name/${name}_seed1/model.keras --data /tmp/jets.parquet \
    --json /tmp/logs/probe_$name.json > /tmp/logs/probe_$name.log 2>&1 ) & }
run pre20 "train.epochs=20"
run default50 "train.epochs=50"
run t21t32_20 "train.epochs=20;model.target=joint_bins;model.target_vars=mass,tau21,tau32;model.target_bins=20,3,3"
run sup30 "train.epochs=30;train.pretrain_epochs=30;model.target=truth;train.lr_decay_factor=0.5;train.lr_decay_every=10"
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-480} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/probe_*.log; do echo "== $f"; cat $f | tail -14; done
(cd /tmp/logs && tar czf $OUT/logs2.tgz .)
