"""80 bins minus 60 bins (both at hybrid fraction 0.6) on the CPU demo network, paired by seed and worker count:
val and test at the epoch best on val, read from candidate.sh's per-epoch files (NAME.epochs).
Run: .venv/bin/python docs/quality_round19/cpu/bins80.py > docs/quality_round19/cpu/bins80.log"""

import re
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def best_on_val(path: Path) -> tuple[float, float]:
    """(val, test) cluster accuracy at the clustering epoch best on val."""
    rows = [dict(re.findall(r"(\w+)=([\d.]+)", line)) for line in path.read_text().splitlines()]
    best = max((r for r in rows if "val_cluster_acc" in r), key=lambda r: float(r["val_cluster_acc"]))
    return float(best["val_cluster_acc"]), float(best["test_cluster_acc"])


for workers in (1, 2):
    seeds = sorted(int(p.stem.rsplit("_s", 1)[1]) for p in HERE.glob(f"hsd06b80_np{workers}_s*.epochs"))
    pairs = {s: [best_on_val(HERE / f"hsd06b{b}0_np{workers}_s{s}.epochs") for b in (8, 6)] for s in seeds}
    for i, split in enumerate(("val", "test")):
        new, old = (np.array([pairs[s][j][i] for s in seeds]) for j in (0, 1))
        d = (new - old) * 100
        print(f"{workers} worker(s), {split}, seeds {seeds}: " + " ".join(f"{x:+.1f}" for x in d)
              + f"; mean {d.mean():+.2f} +- {d.std(ddof=1) / np.sqrt(len(d)):.2f} points "
              + f"({new.mean():.4f} against {old.mean():.4f})")
