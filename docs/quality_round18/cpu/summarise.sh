#!/bin/bash
# Round 18, CPU: per-epoch figures of candidate.sh's runs (clr0.3, beta3) read back from their MLflow stores
# (round 12's history.py -> NAME.epochs), summarised by round 11's swings.py beside round 17's runs of the default
# (probs_np*, same seeds and sample) (swings_cpu.log); then each change minus the default and 2 workers minus 1,
# seed by seed (compare.log). ROUND (default 18) picks the round whose docs/quality_roundN/cpu folder and
# /tmp/rN_* runs are read: round 19's summarise.sh is this script with ROUND=19.
cd "$(dirname "$0")/../../.." || exit 1
ROUND=${ROUND:-18}
D=docs/quality_round$ROUND/cpu
for dir in /tmp/r${ROUND}_*_np[12]_s[0-9]; do
  name=${dir#/tmp/r${ROUND}_}
  .venv/bin/python docs/quality_round12/cpu/history.py $name $dir/mlflow.db > $D/$name.epochs
done
.venv/bin/python docs/quality_round11/swings.py docs/quality_round17/cpu/probs_np[12]_s*.epochs \
  $D/*_np[12]_s*.epochs > $D/swings_cpu.log
.venv/bin/python - $D/swings_cpu.log > $D/compare.log <<'PY'
import re, sys
import numpy as np
best = {}
for line in open(sys.argv[1]).read().splitlines()[1:]:
    m = re.fullmatch(r"(.+)_np(\d)_s(\d+)", line.split()[0])
    if m:
        best[(m.group(1), int(m.group(2)), int(m.group(3)))] = (float(line.split()[3]), float(line.split()[4]))
def paired(label, a, b, col=0):
    seeds = sorted(s for s in range(1, 10) if a + (s,) in best and b + (s,) in best)
    d = np.array([best[a + (s,)][col] - best[b + (s,)][col] for s in seeds]) * 100
    print(f"{label}, seeds {seeds}: " + " ".join(f"{x:+.1f}" for x in d)
          + f"; mean {d.mean():+.1f} +- {d.std(ddof=1) / np.sqrt(len(d)):.1f} points"
          + f" ({np.mean([best[a + (s,)][col] for s in seeds]):.3f} against"
          + f" {np.mean([best[b + (s,)][col] for s in seeds]):.3f})")
names = sorted({k[0] for k in best} - {"probs"})
for name in names:
    for np_ in (1, 2):
        paired(f"{name} minus the default, {np_} worker(s), best-val", (name, np_), ("probs", np_))
        paired(f"{name} minus the default, {np_} worker(s), last epoch", (name, np_), ("probs", np_), col=1)
    paired(f"{name}: 2 workers minus 1 worker, best-val", (name, 2), (name, 1))
PY
cat $D/swings_cpu.log $D/compare.log
