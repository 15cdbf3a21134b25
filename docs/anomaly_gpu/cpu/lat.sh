#!/bin/bash
# CPU study (2026-12-06): pretraining only, 8 epochs, demo-size network, the half-size sample (studies/anomaly_gpu.py simulate --qcd 52000 --wprime 1000 --signal wprime_xy; convert --fraction 0.01 -> /tmp/anom/ev100.parquet); plain k-means on the latent and target coordinates (--latent-kmeans).
cd "$(dirname "$0")/../../.."
DEMO="--model.k 10 --model.gap1_channels 16 --model.gap2_channels 16 --model.gap2_heads 2 --model.point_channels 32,64 --model.latent_dim 32 --model.head_units 64"
C="env KERAS_BACKEND=jax PYTHONUNBUFFERED=1 .venv/bin/python -m studies.anomaly_gpu train --data /tmp/anom/ev100.parquet --seeds 1 $DEMO --train.batch_size 256 --train.epochs 8 --train.pretrain_epochs 8 --model.n_clusters 16 --latent-kmeans 16,32,64"
$C --name mm --run.output_dir /tmp/anom/mm --json /tmp/anom/mm.json > /tmp/anom/mm.log 2>&1 &
$C --name mmtau --run.output_dir /tmp/anom/mmtau --json /tmp/anom/mmtau.json --model.target_vars m_j1,m_j2,tau21_j1,tau21_j2 --model.target_bins 10,10,3,3 > /tmp/anom/mmtau.log 2>&1 &
wait
