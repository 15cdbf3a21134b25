#!/bin/bash
# Round 11, device call 1 (one GPU), on the round-8 packed sample, seed 1, five trainings side by side:
#   default50:  the default config, 50 epochs (the same-call reference; round 10 gave val 0.728 / test 0.731)
#   rot03, rot1: the self-supervised term with views that keep the jet mass (rotation about the jet axis only:
#               no axis shift, no dropped particles), weight 0.3 and 1, 50 epochs; round 10 left them untried
#   pre20:      the default stopped after its 20 pretraining epochs (mass bins)
#   sup30:      the same network on the true labels, 30 epochs, lr halved every 10
# then studies/latent_probe.py --dump on pre20, default50 and sup30: float16 latents of 20 000 training jets and of
# every val and test jet, for the clustering-bound study on the CPU (latent_bounds.py).
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q8/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_MEM_FRACTION=0.15
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
python3 -m studies.quality_gpu unpack --packed .dev_q8/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1 \
  || { tail -5 /tmp/unpack.log; exit 1; }
echo "unpacked $(el) s"
S="python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet --data.reader_threads 2"
mkdir -p /tmp/logs
train() { name=$1; shift; $S --seeds 1 --run.output_dir /tmp/runs/$name --json /tmp/logs/$name.json \
    --variant "$name:$*" > /tmp/logs/$name.log 2>&1; }
dump() { python3 -m studies.latent_probe --model /tmp/runs/$1/${1}_seed1/model.keras --data /tmp/jets.parquet \
    --train-jets 20000 --dims 5,16,32 --json /tmp/logs/probe_$1.json --dump $OUT/$1 > /tmp/logs/probe_$1.log 2>&1; }
(train default50 "train.epochs=50" && dump default50) &
(train rot03 "train.epochs=50;model.ssl_weight=0.3;model.ssl_shift=0;model.ssl_drop=0") &
(train rot1 "train.epochs=50;model.ssl_weight=1;model.ssl_shift=0;model.ssl_drop=0") &
(train pre20 "train.epochs=20" && dump pre20) &
(train sup30 "train.epochs=30;train.pretrain_epochs=30;model.target=truth;train.lr_decay_factor=0.5;train.lr_decay_every=10" \
  && dump sup30) &
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-500} ]; do sleep 3; done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
for f in /tmp/logs/probe_*.log; do echo "== $f"; tail -16 $f; done
(cd /tmp/logs && tar czf $OUT/logs1.tgz .)
ls -la $OUT
