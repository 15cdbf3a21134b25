#!/bin/bash
# Round 16, CPU: per-epoch figures of candidate.sh's runs read back from their MLflow stores (round 12's
# history.py -> NAME.epochs), summarised by round 11's swings.py beside round 13's default and round 15's hybrid
# (start on the latent) runs of the same seeds and sample (swings_cpu.log), paired with the default by round 13's
# paired.py (paired.log), and 2 workers against 1 seed by seed (workers.log).
cd "$(dirname "$0")/../../.." || exit 1
D=docs/quality_round16/cpu
for dir in /tmp/r16_cand_np[12]_s[0-9]; do
  name=${dir#/tmp/r16_}
  .venv/bin/python docs/quality_round12/cpu/history.py $name $dir/mlflow.db > $D/$name.epochs
done
.venv/bin/python docs/quality_round11/swings.py docs/quality_round13/cpu/default_s[123].epochs \
  docs/quality_round15/cpu/hyb_s[123].epochs $D/cand_np[12]_s*.epochs > $D/swings_cpu.log
.venv/bin/python docs/quality_round13/cpu/paired.py $D/swings_cpu.log > $D/paired.log
.venv/bin/python - $D/swings_cpu.log > $D/workers.log <<'PY'
import re, sys
import numpy as np
best = {}
for line in open(sys.argv[1]).read().splitlines()[1:]:
    m = re.fullmatch(r"cand_np(\d)_s(\d+)", line.split()[0])
    if m:
        best[(int(m.group(1)), int(m.group(2)))] = float(line.split()[3])
seeds = sorted(s for w, s in best if w == 1 and (2, s) in best)
d = np.array([best[(2, s)] - best[(1, s)] for s in seeds]) * 100
print(f"candidate, 2 workers minus 1 worker (val-selected test accuracy), seeds {seeds}: "
      + " ".join(f"{x:+.1f}" for x in d)
      + (f"; mean {d.mean():+.1f} +- {d.std(ddof=1) / np.sqrt(len(d)):.1f} points" if len(d) > 1 else ""))
print(f"1 worker {np.mean([best[(1, s)] for s in seeds]):.3f}, 2 workers {np.mean([best[(2, s)] for s in seeds]):.3f}")
PY
cat $D/swings_cpu.log $D/paired.log $D/workers.log
