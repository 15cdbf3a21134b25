"""Round 13, CPU: each variant's val-selected test cluster accuracy (``best-val`` of swings.py) against the
default's on the same code (``default_s<seed>``, default.sh) seed by seed: the means and the paired difference
with its standard error. Round 12's default runs (``a10_1_s<seed>``, before the capped-read fix) are listed as
the variant ``round12``. Supervised runs (``sup_s<seed>.epochs`` beside the log) by their classifier's test
accuracy: the last epoch and the mean of the last 4.

    python docs/quality_round13/cpu/paired.py swings_cpu.log
"""

import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

best: dict[str, dict[int, float]] = defaultdict(dict)
for line in open(sys.argv[1]).read().splitlines()[1:]:
    parts = line.split()
    m = re.fullmatch(r"(.+)_s(\d+)", parts[0])
    if m and len(parts) >= 4:
        name = "round12" if m.group(1) == "a10_1" else m.group(1)
        best[name][int(m.group(2))] = float(parts[3])
best.pop("sup", None)  # classification only: no clustering figure
base = best.pop("default")
print(f"default (alpha_start 10, this round's code), seeds {sorted(base)}: {np.mean(list(base.values())):.3f}")
for name, runs in sorted(best.items()):
    seeds = sorted(set(runs) & set(base))
    diff = np.array([runs[s] - base[s] for s in seeds]) * 100
    se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    print(f"{name:<8} seeds {seeds}: {np.mean([runs[s] for s in seeds]):.3f} against "
          f"{np.mean([base[s] for s in seeds]):.3f}, paired {diff.mean():+.1f} +- {se:.1f} points "
          f"(per seed {' '.join(f'{d:+.1f}' for d in diff)})")
for path in sorted(Path(sys.argv[1]).parent.glob("sup_s*.epochs")):
    acc = [float(v) for v in re.findall(r"test_class_acc=([\d.]+)", path.read_text())]
    print(f"supervised {path.stem}: test class accuracy last epoch {acc[-1]:.3f}, mean of the last 4 "
          f"{np.mean(acc[-4:]):.3f}")
