"""Round 11: epoch-to-epoch stability of trainings, from the EPOCH lines of ``studies.quality_gpu sweep`` logs (or
of ``cpu/history.py`` for ``jobs.train`` runs).

Per run: the test mass-bin (or class) accuracy over the last 10 pretraining epochs (mean, and the mean absolute
change between consecutive epochs); in the clustering phase the test cluster accuracy at the epoch best on val, at
the last epoch and averaged over the last 4, and its mean absolute epoch-to-epoch change.

    python docs/quality_round11/swings.py LOG... > swings.log
"""

import re
import sys

import numpy as np

print(f"{'run':<22} {'pretrain acc':>12} {'|d| pre':>8} {'best-val':>9} {'last':>6} {'last4':>6} {'|d| clu':>8}")
for path in sys.argv[1:]:
    rows = []
    for line in open(path):
        if line.startswith("EPOCH "):
            name, epoch = line.split()[1:3]
            rows.append((int(epoch), dict(re.findall(r"(\w+)=([-\d.naife]+)", line))))
    if not rows:
        continue
    pre = np.array([float(r["test_class_acc"]) for _, r in rows if "test_cluster_acc" not in r])
    clu = [(float(r["val_cluster_acc"]), float(r["test_cluster_acc"])) for _, r in rows if "test_cluster_acc" in r]
    tail = pre[-10:]
    line = f"{name:<22} {tail.mean():12.3f} {np.abs(np.diff(tail)).mean():8.3f}"
    if clu:
        val, test = np.array(clu).T
        line += (f" {test[int(np.argmax(val))]:9.3f} {test[-1]:6.3f} {test[-4:].mean():6.3f}"
                 f" {np.abs(np.diff(test)).mean():8.3f}")
    print(line)
