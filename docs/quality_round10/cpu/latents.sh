#!/bin/bash
# Round 10, CPU (2 cores): two pretrained latents for clustering studies, since the device call that was to dump
# the GPU ones (call3.sh) ran out of device time. Pretraining only (epochs = pretrain_epochs), 1 Horovod worker,
# batch 256, lr 1e-3, the round-8 study sample unpacked to /tmp/jets.parquet; then the latent probe with a dump of
# 20 000 training latents and every val/test one, and latent_clustering.py on each dump.
cd "$(dirname "$0")/../../.." || exit 1
C="--data ${DATA:-/tmp/jets.parquet} --data.reader_threads 1 --train.scale_lr false --np -1 --train.batch_size 256
  --run.progress false --run.experiment probe"
# the demo-size network, 10 epochs of every training jet
.venv/bin/python -m jobs.train --config conf/demo.yaml $C --train.epochs 10 --train.pretrain_epochs 10 \
  --data.max_eval_jets 0 --run.output_dir /tmp/cpu_pre10
# the paper-size network (conf/ucluster.yaml), 10 epochs of 30 000 jets (the full schedule takes hours here)
.venv/bin/python -m jobs.train $C --train.epochs 10 --train.pretrain_epochs 10 --data.max_train_jets 30000 \
  --data.max_eval_jets 2000 --run.output_dir /tmp/cpu_paper10
.venv/bin/python -m studies.latent_probe --model /tmp/cpu_pre10/model.keras --config conf/demo.yaml \
  --data ${DATA:-/tmp/jets.parquet} --train-jets 20000 --dims 2,5 --dump /tmp/cpu_pre10_lat
.venv/bin/python -m studies.latent_probe --model /tmp/cpu_paper10/model.keras --data ${DATA:-/tmp/jets.parquet} \
  --train-jets 20000 --dims 2,5,10,32 --json docs/quality_round10/cpu/probe_paper10.json --dump /tmp/cpu_paper10_lat
.venv/bin/python docs/quality_round10/cpu/latent_clustering.py /tmp/cpu_pre10_lat > docs/quality_round10/cpu/latent_demo10.log
.venv/bin/python docs/quality_round10/cpu/latent_clustering.py /tmp/cpu_paper10_lat > docs/quality_round10/cpu/latent_paper10.log
