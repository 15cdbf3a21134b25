#!/bin/bash
# Round 11, CPU (2 cores): the block shuffle of commit 1c5a8a9 against the streaming shuffle of 8f5b129 on the
# demo-size network (conf/demo.yaml: the default beta 10, slow centroids), the round-8 study sample unpacked to
# /tmp/jets.parquet (23 training row groups of one class each). Full epochs (every training jet, 356 steps of
# 256), 20 epochs of which 6 pretraining, 1 Horovod worker, lr 1e-3, full val and test every epoch, the
# clustering epoch best on val reported on test. The block runs use a copy of the tree whose loader is
# `git show 1c5a8a9:ucluster/data/loader.py`. One run at a time.
cd "$(dirname "$0")/../../.." || exit 1
LOGS=${LOGS:-docs/quality_round11/cpu}
BEFORE=/tmp/tree_1c5a8a9
rm -rf $BEFORE && mkdir -p $BEFORE && cp -r ucluster jobs conf $BEFORE/ \
  && git show 1c5a8a9:ucluster/data/loader.py > $BEFORE/ucluster/data/loader.py || exit 1
C="--config conf/demo.yaml --data ${DATA:-/tmp/jets.parquet} --data.reader_threads 1 --train.epochs 20
  --train.pretrain_epochs 6 --data.max_train_jets 0 --data.max_eval_jets 0 --train.scale_lr false
  --train.batch_size 256 --np -1 --run.experiment loader_study --run.progress false"
PY=$PWD/.venv/bin/python
for seed in ${SEEDS:-1 2}; do
  (cd $BEFORE && PYTHONPATH=$BEFORE $PY -m jobs.train $C --train.seed $seed --run.output_dir /tmp/ld11_block_s$seed \
    --run.run_name block_s$seed) > $LOGS/block_s$seed.log 2>&1
  $PY -m jobs.train $C --train.seed $seed --run.output_dir /tmp/ld11_stream_s$seed --run.run_name stream_s$seed \
    > $LOGS/stream_s$seed.log 2>&1
done
