#!/bin/bash
# CPU run (this 2-core machine, 2026-12-06): the device minutes ran out before call 9/10 could run, so the new
# conf/anomaly.yaml (tau21 grid, 64 clusters, clustering = the k-means init on the pretrained latent) runs here on
# the full call-5/6/8 sample (same command and seeds: 104 000 QCD + 2 000 X(500) Y(100)), with the demo-size
# network of conf/anomaly_demo.yaml and 6 pretraining epochs (2 cores cannot train the paper-size network 20 epochs
# on 84 k events in a session). Seeds 1-3 at 1 % injected, seed 1 at 0.3 %.
set -u
cd "$(dirname "$0")/../../.."
D=${DATA:-/tmp/anom}
L=docs/anomaly_gpu/cpu
A=".venv/bin/python -m studies.anomaly_gpu"
$A simulate --out $D/h5 --qcd 104000 --wprime 2000 --signal wprime_xy --processes 2 --seconds 3000  # keeps files already there
[ -d $D/full100.parquet ] || $A convert --h5 $D/h5 --fraction 0.01 --out $D/full100.parquet --processes 2
[ -d $D/full30.parquet ] || $A convert --h5 $D/h5 --fraction 0.003 --out $D/full30.parquet --processes 2
DEMO="--model.k 10 --model.gap1_channels 16 --model.gap2_channels 16 --model.gap2_heads 2 --model.point_channels 32,64
  --model.latent_dim 32 --model.head_units 64 --train.batch_size 256 --train.epochs 6 --train.pretrain_epochs 6"
run() { name=$1; data=$2; seed=$3; shift 3; env KERAS_BACKEND=jax PYTHONUNBUFFERED=1 $A train --data $data \
  --seeds $seed --name $name $DEMO --run.output_dir $D/$name --json $L/${name}_s$seed.json "$@" \
  > $L/${name}_s$seed.log 2>&1 & }
run cpu100 $D/full100.parquet 1 --latent-kmeans 32,64
run cpu100 $D/full100.parquet 2
run cpu100 $D/full100.parquet 3
run cpu30 $D/full30.parquet 1
wait
grep -h "^ANOMALY\|^LATENT" $L/*.log
