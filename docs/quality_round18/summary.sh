#!/bin/bash
# Round 18: the GPU runs of round 17's call 2 (quality_round17/raw2: the default, kmeans_space probs, seeds 1-6;
# alpha held at 10, seeds 1-3) and of round 18's gpu1.sh (raw1: beta 3, pretraining 35 epochs; seeds 1-4) beside
# round 16's default (start on the expected bin, 40 bins; seeds 1-5), through round 17's summary.py -> summary.log
cd "$(dirname "$0")/../.." || exit 1
.venv/bin/python docs/quality_round17/summary.py docs/quality_round16/raw1/hyb_tgt_b40_s1.json \
  docs/quality_round16/raw2/b40_s*.json docs/quality_round17/raw2/*.json docs/quality_round18/raw1/*.json \
  > docs/quality_round18/summary.log
cat docs/quality_round18/summary.log
# each change minus the default (probs) on shared seeds: val-selected test and val, and the last (50th) epoch
.venv/bin/python - docs/quality_round17/raw2/*.json docs/quality_round18/raw1/*.json \
  >> docs/quality_round18/summary.log <<'PY'
import json, sys
import numpy as np
runs = {}
for path in sys.argv[1:]:
    report = json.load(open(path))
    for r in report["rows"]:
        h = [m for m in report["runs"][f"{r['variant']}_seed{r['seed']}"]["history"] if "val_cluster_acc" in m]
        runs[(r["variant"], r["seed"])] = {"test": r["test_cluster_acc"], "val": r["val_cluster_acc"],
                                           "last test": h[-1]["test_cluster_acc"], "last val": h[-1]["val_cluster_acc"]}
print("\nchange minus the default (probs), paired by seed, points (mean +- standard error)")
for name in ("probs_a0", "beta3", "pre35"):
    seeds = sorted(s for v, s in runs if v == name and ("probs", s) in runs)
    parts = []
    for key in ("test", "val", "last test", "last val"):
        d = np.array([runs[(name, s)][key] - runs[("probs", s)][key] for s in seeds]) * 100
        parts.append(f"{key} {d.mean():+.1f} +- {d.std(ddof=1) / np.sqrt(len(d)):.1f}")
    print(f"{name:9s} seeds {seeds}: " + "; ".join(parts))
for name in ("probs", "probs_a0", "beta3", "pre35"):
    v = [runs[k] for k in runs if k[0] == name]
    print(f"{name:9s} last epoch: test {np.mean([x['last test'] for x in v]):.3f}, val {np.mean([x['last val'] for x in v]):.3f}")
PY
tail -9 docs/quality_round18/summary.log
