#!/bin/bash
# CPU run (2026-12-06, after full.sh): the same default at 0.1 % injected, seed 1, on the same simulated files.
set -u
cd "$(dirname "$0")/../../.."
D=${DATA:-/tmp/anom}
L=docs/anomaly_gpu/cpu
A=".venv/bin/python -m studies.anomaly_gpu"
$A simulate --out $D/h5 --qcd 104000 --wprime 2000 --signal wprime_xy --processes 2 --seconds 3000
[ -d $D/full10.parquet ] || $A convert --h5 $D/h5 --fraction 0.001 --out $D/full10.parquet --processes 2
DEMO="--model.k 10 --model.gap1_channels 16 --model.gap2_channels 16 --model.gap2_heads 2 --model.point_channels 32,64
  --model.latent_dim 32 --model.head_units 64 --train.batch_size 256 --train.epochs 6 --train.pretrain_epochs 6"
env KERAS_BACKEND=jax PYTHONUNBUFFERED=1 $A train --data $D/full10.parquet --seeds 1 --name cpu10 $DEMO \
  --run.output_dir $D/cpu10 --json $L/cpu10_s1.json > $L/cpu10_s1.log 2>&1
grep -h "^ANOMALY" $L/cpu10_s1.log
