#!/bin/bash
# CPU study (2026-12-06): the deep k-means phase at 64 clusters with a harder soft assignment (alpha_start 20 / 50), and the same run stopped after pretraining (init: its k-means initialisation is the result). Same sample as lat.sh.
cd "$(dirname "$0")/../../.."
DEMO="--model.k 10 --model.gap1_channels 16 --model.gap2_channels 16 --model.gap2_heads 2 --model.point_channels 32,64 --model.latent_dim 32 --model.head_units 64"
TAU="--model.target_vars m_j1,m_j2,tau21_j1,tau21_j2 --model.target_bins 10,10,3,3"
C="env KERAS_BACKEND=jax PYTHONUNBUFFERED=1 .venv/bin/python -m studies.anomaly_gpu train --data /tmp/anom/ev100.parquet --seeds 1 $DEMO $TAU --train.batch_size 256 --train.pretrain_epochs 6 --model.n_clusters 64"
$C --name a20 --train.epochs 11 --train.alpha_start 20 --run.output_dir /tmp/anom/a20 --json /tmp/anom/a20.json > /tmp/anom/a20.log 2>&1 &
$C --name a50 --train.epochs 11 --train.alpha_start 50 --run.output_dir /tmp/anom/a50 --json /tmp/anom/a50.json > /tmp/anom/a50.log 2>&1 &
$C --name init --train.epochs 6 --run.output_dir /tmp/anom/init --json /tmp/anom/init.json --latent-kmeans 32,64 > /tmp/anom/init.log 2>&1 &
wait
