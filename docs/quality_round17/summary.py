"""Round 17: the device runs of this round beside round 16's default (hybrid mass, 40 log bins, k-means start on
the expected bin: round 16's hyb_tgt_b40 seed 1 and b40 seeds 2-5), from the ``--json`` files of
``studies.quality_gpu sweep``. Per run: test accuracy at the clustering epoch best on val, its val figure, NMI,
ARI, purity W/Z/t, the k-means start's test accuracy, the selected epoch and the mean of the last 4 epochs; per
variant: mean and standard deviation over seeds, and the paired difference to round 16's default on shared seeds.

    python docs/quality_round17/summary.py docs/quality_round16/raw1/hyb_tgt_b40_s1.json \\
        docs/quality_round16/raw2/b40_s*.json docs/quality_round17/raw*/*.json > docs/quality_round17/summary.log
"""

import json
import sys
from collections import defaultdict

import numpy as np

REFERENCE = "b40"
by_variant: dict[str, dict[int, dict]] = defaultdict(dict)
for path in sorted(sys.argv[1:]):
    report = json.load(open(path))
    for r in report["rows"]:
        run = report["runs"][f"{r['variant']}_seed{r['seed']}"]
        r["last4"] = run.get("last4_mean_test_cluster_acc", np.nan)
        r["curve"] = [h.get("test_cluster_acc", np.nan) for h in run["history"]]
        by_variant[{"hyb_tgt_b40": "b40"}.get(r["variant"], r["variant"])][r["seed"]] = r
print(f"{'variant':<10} {'seed':>4} {'test':>6} {'val':>6} {'nmi':>6} {'ari':>6} {'purity w/z/t':>17} {'start':>6} "
      f"{'epoch':>5} {'last4':>6}  test every 5th epoch from 20")
for name, runs in by_variant.items():
    for seed, r in sorted(runs.items()):
        curve = " ".join(f"{x:.2f}" for x in r["curve"][20::5])
        print(f"{name:<10} {seed:>4} {r['sel_test_cluster_acc']:.4f} {r['val_cluster_acc']:.4f} {r['test_nmi']:.4f} "
              f"{r['test_ari']:.4f} {r['purity']:>17} {r['init_test_cluster_acc']:.4f} {r['sel_cluster_epoch']:>5} "
              f"{r['last4']:.4f}  {curve}")
print()
ref = by_variant[REFERENCE]
for name, runs in by_variant.items():
    s = np.array([r["sel_test_cluster_acc"] for r in runs.values()])
    line = (f"{name:<10} n={len(s)} test {s.mean():.4f}" + (f" +- {s.std(ddof=1):.4f}" if len(s) > 1 else "")
            + f"  val {np.mean([r['val_cluster_acc'] for r in runs.values()]):.4f}"
            + f"  start {np.mean([r['init_test_cluster_acc'] for r in runs.values()]):.4f}"
            + f"  last4 {np.mean([r['last4'] for r in runs.values()]):.4f}")
    shared = sorted(set(runs) & set(ref))
    if name != REFERENCE and shared:
        d = np.array([runs[k]["sel_test_cluster_acc"] - ref[k]["sel_test_cluster_acc"] for k in shared]) * 100
        line += f"; minus {REFERENCE} on seeds {shared}: {d.mean():+.1f}"
        line += f" +- {d.std(ddof=1) / np.sqrt(len(d)):.1f} points" if len(d) > 1 else " points"
    print(line)
