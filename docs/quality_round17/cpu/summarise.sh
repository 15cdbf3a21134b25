#!/bin/bash
# Round 17, CPU: per-epoch figures of candidate.sh's runs read back from their MLflow stores (round 12's
# history.py -> NAME.epochs), summarised by round 11's swings.py beside round 13's old default and round 16's
# runs of the round 16 default (start on the expected bin) on the same seeds and sample (swings_cpu.log), paired
# with the old default by round 13's paired.py (paired.log); then the start on the probabilities against round
# 16's start on the expected bin, and 2 workers against 1, seed by seed (compare.log).
cd "$(dirname "$0")/../../.." || exit 1
D=docs/quality_round17/cpu
for dir in /tmp/r17_probs_np[12]_s[0-9]; do
  name=${dir#/tmp/r17_}
  .venv/bin/python docs/quality_round12/cpu/history.py $name $dir/mlflow.db > $D/$name.epochs
done
.venv/bin/python docs/quality_round11/swings.py docs/quality_round13/cpu/default_s[123].epochs \
  docs/quality_round16/cpu/cand_np[12]_s*.epochs $D/probs_np[12]_s*.epochs > $D/swings_cpu.log
.venv/bin/python docs/quality_round13/cpu/paired.py $D/swings_cpu.log > $D/paired.log
.venv/bin/python - $D/swings_cpu.log > $D/compare.log <<'PY'
import re, sys
import numpy as np
best = {}
for line in open(sys.argv[1]).read().splitlines()[1:]:
    m = re.fullmatch(r"(cand|probs)_np(\d)_s(\d+)", line.split()[0])
    if m:
        best[(m.group(1), int(m.group(2)), int(m.group(3)))] = float(line.split()[3])
def paired(label, a, b):
    seeds = sorted(s for s in (1, 2, 3) if a + (s,) in best and b + (s,) in best)
    d = np.array([best[a + (s,)] - best[b + (s,)] for s in seeds]) * 100
    print(f"{label}, seeds {seeds}: " + " ".join(f"{x:+.1f}" for x in d)
          + f"; mean {d.mean():+.1f} +- {d.std(ddof=1) / np.sqrt(len(d)):.1f} points"
          + f" ({np.mean([best[a + (s,)] for s in seeds]):.3f} against {np.mean([best[b + (s,)] for s in seeds]):.3f})")
for np_ in (1, 2):
    paired(f"{np_} worker(s): start on the probabilities minus start on the expected bin", ("probs", np_), ("cand", np_))
paired("start on the probabilities: 2 workers minus 1 worker", ("probs", 2), ("probs", 1))
PY
cat $D/swings_cpu.log $D/paired.log $D/compare.log
