#!/bin/bash
# Round 13, CPU: the per-epoch figures of every run of this folder's scripts, read back from their MLflow stores
# (round 12's history.py -> NAME.epochs), summarised per run by round 11's swings.py (swings_cpu.log) beside round
# 12's default (alpha_start 10, 1 worker) runs of the same seeds, and paired with this round's default runs
# (default.sh) by paired.py (paired.log).
cd "$(dirname "$0")/../../.." || exit 1
D=docs/quality_round13/cpu
for dir in /tmp/r13_*; do
  name=${dir#/tmp/r13_}
  .venv/bin/python docs/quality_round12/cpu/history.py $name $dir/mlflow.db > $D/$name.epochs
done
.venv/bin/python docs/quality_round11/swings.py docs/quality_round12/cpu/a10_1_s[123].epochs $D/*.epochs \
  > $D/swings_cpu.log
.venv/bin/python $D/paired.py $D/swings_cpu.log > $D/paired.log
cat $D/swings_cpu.log $D/paired.log
