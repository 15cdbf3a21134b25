#!/bin/bash
# Round 15, CPU: per-epoch figures of this folder's runs read back from their MLflow stores (round 12's
# history.py -> NAME.epochs), summarised by round 11's swings.py beside round 13's default runs of the same seeds
# and sample (swings_cpu.log), and paired with them by round 13's paired.py (paired.log). hyb_tgt_s1 was stopped
# after epoch 12 (to free the CPU for the test suite): its .epochs file is kept, but it is left out of the pairing.
cd "$(dirname "$0")/../../.." || exit 1
D=docs/quality_round15/cpu
for dir in /tmp/r15_*_s[0-9]; do
  name=${dir#/tmp/r15_}
  .venv/bin/python docs/quality_round12/cpu/history.py $name $dir/mlflow.db > $D/$name.epochs
done
.venv/bin/python docs/quality_round11/swings.py docs/quality_round13/cpu/default_s[123].epochs $D/hyb_s*.epochs \
  > $D/swings_cpu.log
.venv/bin/python docs/quality_round13/cpu/paired.py $D/swings_cpu.log > $D/paired.log
cat $D/swings_cpu.log $D/paired.log
