"""Round 15: per-run and per-variant figures of the device runs, from the ``--json`` files of
``studies.quality_gpu sweep`` (``raw1``; ``raw2`` once ``gpu2.sh`` has run).

Per run, at the clustering epoch best on val: test accuracy, NMI, ARI, per-class purity (W/Z/t) and the k-means
initialisation's test accuracy; for the supervised run, the test accuracy of its epoch best on val. Then each
variant's mean and standard deviation over seeds, and its mean paired difference to the reference variant
(a10, the study default) on the seeds both have.

    python docs/quality_round15/summary.py docs/quality_round15/raw*/*.json > docs/quality_round15/summary.log
"""

import json
import sys
from collections import defaultdict

import numpy as np

REFERENCE = "a10"

rows = [row for path in sorted(sys.argv[1:]) for row in json.load(open(path))["rows"]]
by_variant: dict[str, dict[int, dict]] = defaultdict(dict)
print(f"{'variant':<13} {'seed':>4} {'test':>6} {'nmi':>6} {'ari':>6} {'purity w/z/t':>15} {'init':>6} {'epoch':>5}")
for r in sorted(rows, key=lambda r: (r["variant"], r["seed"])):
    if np.isnan(r["init_test_cluster_acc"]):  # the supervised ceiling: classification accuracy
        r["score"] = r["sel_test_class_acc"]
        print(f"{r['variant']:<13} {r['seed']:>4} {r['score']:.4f}  (supervised: test accuracy at the epoch best "
              f"on val, {r['sel_class_epoch']}; last epoch {r['test_class_acc']:.4f})")
    else:
        r["score"] = r["sel_test_cluster_acc"]
        print(f"{r['variant']:<13} {r['seed']:>4} {r['score']:.4f} {r['test_nmi']:.4f} {r['test_ari']:.4f} "
              f"{r['purity']:>15} {r['init_test_cluster_acc']:.4f} {r['sel_cluster_epoch']:>5}")
    by_variant[r["variant"]][r["seed"]] = r
print()
ref = by_variant.get(REFERENCE, {})
for name, runs in by_variant.items():
    scores = np.array([r["score"] for r in runs.values()])
    line = f"{name:<13} n={len(scores)} mean {scores.mean():.4f}"
    if len(scores) > 1:
        line += f" +- {scores.std(ddof=1):.4f} (std over seeds)"
    shared = sorted(set(runs) & set(ref))
    supervised = any(np.isnan(r["init_test_cluster_acc"]) for r in runs.values())
    if name != REFERENCE and shared and not supervised:
        diff = np.array([runs[s]["score"] - ref[s]["score"] for s in shared])
        line += f"; paired with {REFERENCE} on seeds {shared}: {100 * diff.mean():+.1f}"
        if len(diff) > 1:
            line += f" +- {100 * diff.std(ddof=1) / np.sqrt(len(diff)):.1f} points (standard error)"
        else:
            line += " points"
    print(line)
