#!/bin/bash
# Round 14, CPU: per-epoch figures of this folder's runs read back from their MLflow stores (round 12's
# history.py -> NAME.epochs), summarised by round 11's swings.py beside round 13's default runs of the same seeds
# (swings_cpu.log) and paired with them by round 13's paired.py (paired.log).
cd "$(dirname "$0")/../../.." || exit 1
D=docs/quality_round14/cpu
for dir in /tmp/r14_*; do
  name=${dir#/tmp/r14_}
  .venv/bin/python docs/quality_round12/cpu/history.py $name $dir/mlflow.db > $D/$name.epochs
done
.venv/bin/python docs/quality_round11/swings.py docs/quality_round13/cpu/default_s[123].epochs $D/*.epochs \
  > $D/swings_cpu.log
.venv/bin/python docs/quality_round13/cpu/paired.py $D/swings_cpu.log > $D/paired.log
cat $D/swings_cpu.log $D/paired.log
