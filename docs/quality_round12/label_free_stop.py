"""Round 12: can a figure logged without labels pick the clustering epoch as well as the labelled val split does?

For every run of the device calls (``--json`` files of ``studies.quality_gpu sweep``; the default read from call
1's live weights), the test cluster accuracy at the epoch chosen by: the val cluster accuracy (needs labelled val
jets, the project's ``train.select best_val``); the val mass-bin accuracy (label-free: the target is the jet mass);
the most balanced val clusters (label-free, assumes classes of similar size); the last epoch; the mean of the last
10 epochs; and the best epoch on test itself (the ceiling of any rule). Means over each variant's seeds.

    python docs/quality_round12/label_free_stop.py docs/quality_round12/raw*/*.json > label_free_stop.log
"""

import sys

import numpy as np
from summary import device_runs  # this folder (the script's own directory is on sys.path)

results: dict[str, list[dict]] = {}
for variant, _, _, h, p in device_runs(sys.argv[1:]):
    if not h:
        continue
    test = np.array([r[f"{p}test_cluster_acc"] for r in h])
    results.setdefault(variant, []).append({
        "val_cluster_acc": test[np.argmax([r[f"{p}val_cluster_acc"] for r in h])],
        "val_massbin_acc": test[np.argmax([r[f"{p}val_class_acc"] for r in h])],
        "balanced": test[np.argmax([r[f"{p}val_min_cluster_fraction"] for r in h])],
        "last": test[-1], "last10_mean": test[-10:].mean(), "best_on_test": test.max()})
print(f"{'variant':<9} {'runs':>4} " + " ".join(f"{k:>15}" for k in next(iter(results.values()))[0]))
for variant, rows in results.items():
    print(f"{variant:<9} {len(rows):>4} " + " ".join(f"{np.mean([r[k] for r in rows]):15.3f}" for k in rows[0]))
