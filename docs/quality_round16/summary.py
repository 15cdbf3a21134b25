"""Round 16: per-run and per-variant figures of this round's device runs and round 15's, from the ``--json`` files
of ``studies.quality_gpu sweep``. Each run is scored at its clustering epoch best on val (test accuracy, NMI, ARI,
purity W/Z/t, the k-means start's test accuracy); each variant gets its mean and standard deviation over seeds
(and over val), and a comparison with the default (a10) over the seeds both have. "last4" is the mean test
accuracy of the last 4 epochs: what a user who cannot select on labelled val jets gets.

The default config's seed 1 and the latent-start hybrid's seed 1 ran twice (round 15 and round 16's gpu1.sh, as
the GPU is not bit-reproducible): the second runs are kept apart as a10' and hyb_log'.

    python docs/quality_round16/summary.py docs/quality_round15/raw*/*.json docs/quality_round16/raw*/*.json \\
        > docs/quality_round16/summary.log
"""

import json
import sys
from collections import defaultdict

import numpy as np

REFERENCE = "a10"
NAMES = {"hyb_tgt_b40": "b40", "hyb_tgt_s1": "s1"}  # round 16 call 1's seed-1 runs of call 2's variants

by_variant: dict[str, dict[int, dict]] = defaultdict(dict)
for path in sorted(sys.argv[1:]):
    report = json.load(open(path))
    for r in report["rows"]:
        r["last4"] = report["runs"][f"{r['variant']}_seed{r['seed']}"].get("last4_mean_test_cluster_acc", np.nan)
        name = NAMES.get(r["variant"], r["variant"])
        if "quality_round16/raw1" in path and name in ("a10", "hyb_log"):
            name += "'"
        by_variant[name][r["seed"]] = r
print(f"{'variant':<10} {'seed':>4} {'test':>6} {'val':>6} {'nmi':>6} {'ari':>6} {'purity w/z/t':>15} {'start':>6} "
      f"{'epoch':>5} {'last4':>6}")
for name, runs in by_variant.items():
    for seed, r in sorted(runs.items()):
        if np.isnan(r["init_test_cluster_acc"]):  # the supervised ceiling: classification accuracy
            r["score"], r["val"] = r["sel_test_class_acc"], np.nan
            print(f"{name:<10} {seed:>4} {r['score']:.4f}  (supervised: test accuracy at the epoch best on val, "
                  f"{r['sel_class_epoch']})")
            continue
        r["score"], r["val"] = r["sel_test_cluster_acc"], r["val_cluster_acc"] if r["selected_epoch"] == r[
            "sel_cluster_epoch"] else np.nan
        print(f"{name:<10} {seed:>4} {r['score']:.4f} {r['val']:.4f} {r['test_nmi']:.4f} {r['test_ari']:.4f} "
              f"{r['purity']:>15} {r['init_test_cluster_acc']:.4f} {r['sel_cluster_epoch']:>5} {r['last4']:.4f}")
print()
ref = by_variant[REFERENCE]
for name, runs in by_variant.items():
    scores = np.array([r["score"] for r in runs.values()])
    vals = np.array([r["val"] for r in runs.values()])
    line = f"{name:<10} n={len(scores)} test {scores.mean():.4f}"
    if len(scores) > 1:
        line += f" +- {scores.std(ddof=1):.4f}"
    if np.isfinite(vals).all():
        line += f"  val {vals.mean():.4f}  last4 {np.mean([r['last4'] for r in runs.values()]):.4f}"
    shared = sorted(set(runs) & set(ref))
    supervised = any(np.isnan(r["init_test_cluster_acc"]) for r in runs.values())
    if name != REFERENCE and shared and not supervised:
        diff = np.array([runs[s]["score"] - ref[s]["score"] for s in shared])
        line += f"; minus {REFERENCE} on seeds {shared}: {100 * diff.mean():+.1f}"
        line += f" +- {100 * diff.std(ddof=1) / np.sqrt(len(diff)):.1f} points" if len(diff) > 1 else " points"
    print(line)
