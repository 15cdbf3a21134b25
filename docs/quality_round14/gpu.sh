#!/bin/bash
# Round 14, one GPU: NOT RUN this round (every machine start failed; docs/clustering-quality.md, round 14). Ready
# for the next session: LIMIT=540 RUNS="..." bash docs/quality_round14/gpu.sh, carrying .dev_q14.
# The round-8 packed sample, streaming loader, 50 epochs of which 20 pretraining. Round 13 found the k-means init
# sample (and the input-statistics sample) class-skewed by the capped read; every GPU figure of rounds 8-12
# predates the fix. RUNS (default: all four; this round's attempts asked for all four, then all but dino_none,
# then a10 and sup30 as the device minutes ran out):
#   a10:       the study default (alpha_start 10), seeds 1-4, on the fixed loader
#   sup30:     the supervised ceiling (30 epochs, lr halved every 10), seed 1
#   dino_mass: mass bins + self-distillation from a momentum teacher (model.ssl_method dino) at weight 0.3, seed 1
#   dino_none: self-distillation alone as the pretraining (target none), seed 1
# dino: views that keep the jet mass (ssl_drop 0), 64 prototypes, teacher momentum 0.99, teacher temperature
# 0.04, student 0.1, centre momentum 0.9; such a run costs about three plain ones.
set -u
RUNS=${RUNS:-a10 sup30 dino_mass dino_none}
# The carry (.dev_q14) holds the wheels and round 8's packed sample as a tar.xz of uncompressed .npz files: xz
# packs the float16 particles ~10 % smaller than the .npz's zlib, which keeps the transfer under its 64 MiB.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .dev_q14/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
t0=$(date +%s); el() { echo $(( $(date +%s) - t0 )); }
rm -rf /tmp/logs /tmp/runs
[ -d /tmp/jets.parquet ] || { mkdir -p /tmp/packed && tar xJf .dev_q14/gpudata.tar.xz -C /tmp/packed && \
  python3 -m studies.quality_gpu unpack --packed /tmp/packed/gpudata --out /tmp/jets.parquet > /tmp/unpack.log 2>&1; } \
  || { tail -5 /tmp/unpack.log; exit 1; }
echo "unpacked $(el) s"
mkdir -p /tmp/logs
train() { name=$1; seed=$2; shift 2; python3 -m studies.quality_gpu sweep --data /tmp/jets.parquet \
    --data.reader_threads 1 --seeds $seed --run.output_dir /tmp/runs/${name}_$seed --json /tmp/logs/${name}_s$seed.json \
    --variant "$name:$*" > /tmp/logs/${name}_s$seed.log 2>&1; }
SUP="train.epochs=30;train.pretrain_epochs=30;model.target=truth;train.lr_decay_factor=0.5;train.lr_decay_every=10"
D="train.epochs=50;train.alpha_start=10;model.ssl_method=dino;model.ssl_drop=0;model.ssl_prototypes=64"
for run in $RUNS; do
  case $run in
    a10) for seed in 1 2 3 4; do train a10 $seed "train.epochs=50;train.alpha_start=10" & done ;;
    sup30) train sup30 1 "$SUP" & ;;
    dino_mass) train dino_mass 1 "$D;model.ssl_weight=0.3;model.ssl_teacher_momentum=0.99" & ;;
    dino_none) train dino_none 1 "$D;model.target=none;model.ssl_weight=1;model.ssl_teacher_momentum=0.99" & ;;
    *) echo "unknown run '$run' (a10, sup30, dino_mass, dino_none)"; exit 2 ;;
  esac
done
while [ -n "$(jobs -rp)" ] && [ $(el) -lt ${LIMIT:-560} ]; do
  sleep 3; [ $(( $(el) % 30 )) -lt 3 ] && (cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs.tgz)
done
for p in $(jobs -rp); do kill $p 2>/dev/null; done
wait
echo "end $(el) s"
grep -h "^ROW" /tmp/logs/*.log
(cd /tmp/logs && tar czf $OUT/part.tgz . && mv $OUT/part.tgz $OUT/logs.tgz)
