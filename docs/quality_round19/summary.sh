#!/bin/bash
# Round 19: the GPU runs of round 18's gpu2.sh (quality_round18/raw2: centroids near-frozen, the clustering lr
# x0.3 / x0.1) and round 19's gpu1-3.sh (raw1: train.cluster_objective self_label; raw2: the target's hybrid
# fraction 0.6, Gaussian bin smoothing, 60 bins; raw3: fraction 0.6 with 60 bins) beside round 17's runs of the
# default (quality_round17/raw2, probs), through round 17's summary.py -> summary.log; then each change minus the
# default, paired by seed (the val-selected model, and the last epoch)
cd "$(dirname "$0")/../.." || exit 1
RUNS="docs/quality_round17/raw2/probs_s*.json docs/quality_round18/raw2/*.json docs/quality_round19/raw[123]/*.json"
.venv/bin/python docs/quality_round17/summary.py $RUNS > docs/quality_round19/summary.log 2>/dev/null
.venv/bin/python - $RUNS >> docs/quality_round19/summary.log <<'PY'
import json, sys
import numpy as np
runs = {}
for path in sys.argv[1:]:
    report = json.load(open(path))
    for r in report["rows"]:
        h = [m for m in report["runs"][f"{r['variant']}_seed{r['seed']}"]["history"] if "val_cluster_acc" in m]
        runs[(r["variant"], r["seed"])] = {"test": r["test_cluster_acc"], "val": r["val_cluster_acc"],
                                           "start": r["init_test_cluster_acc"],
                                           "last test": h[-1]["test_cluster_acc"], "last val": h[-1]["val_cluster_acc"]}
print("\nchange minus the default (probs), paired by seed, points (mean +- standard error; per seed)")
for name in sorted({v for v, _ in runs} - {"probs"}):
    seeds = sorted(s for v, s in runs if v == name and ("probs", s) in runs)
    parts = []
    for key in ("test", "val", "start", "last test"):
        d = np.array([runs[(name, s)][key] - runs[("probs", s)][key] for s in seeds]) * 100
        parts.append(f"{key} {d.mean():+.1f} +- {d.std(ddof=1) / np.sqrt(len(d)):.1f} ("
                     + " / ".join(f"{x:+.1f}" for x in d) + ")")
    print(f"{name:9s} seeds {seeds}: " + "; ".join(parts))
print()
for name in sorted({v for v, _ in runs}):
    v = [runs[k] for k in runs if k[0] == name]
    print(f"{name:9s} n={len(v)} val-selected test {np.mean([x['test'] for x in v]):.4f} "
          f"(min {np.min([x['test'] for x in v]):.4f}), val {np.mean([x['val'] for x in v]):.4f}; "
          f"last epoch: test {np.mean([x['last test'] for x in v]):.3f}, val {np.mean([x['last val'] for x in v]):.3f}")
PY
grep -v " n=0 " docs/quality_round19/summary.log > /tmp/s19 && mv /tmp/s19 docs/quality_round19/summary.log
cat docs/quality_round19/summary.log
