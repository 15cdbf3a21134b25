#!/bin/bash
# Round 12, CPU: the per-epoch figures of workers.sh and alpha_step.sh runs, read back from their MLflow stores
# (history.py -> NAME.epochs), then summarised per run by round 11's swings.py (swings_cpu.log).
cd "$(dirname "$0")/../../.." || exit 1
D=docs/quality_round12/cpu
for dir in /tmp/wk12_*; do
  name=${dir#/tmp/wk12_}
  .venv/bin/python $D/history.py $name $dir/mlflow.db > $D/$name.epochs
done
.venv/bin/python docs/quality_round11/swings.py $D/*.epochs > $D/swings_cpu.log
cat $D/swings_cpu.log
