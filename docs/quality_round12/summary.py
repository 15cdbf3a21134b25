"""Round 12: per-seed and mean figures of the device calls' runs, from the ``--json`` files of
``studies.quality_gpu sweep`` (``raw1``-``raw4``). The default (alpha_start 1) is read from call 1's live weights
(``live_*``: the runs there averaged weights for the model they handed out, but trained on the live ones).

For each run, at the clustering epoch best on val: test accuracy, NMI and ARI; the last epoch's and the mean of
the last 4 epochs' test accuracy (what a user without labels gets); the k-means initialisation's. Then each
variant's mean and std over seeds, and its mean paired difference to the default on the seeds both have.

    python docs/quality_round12/summary.py docs/quality_round12/raw*/*.json > summary.log
"""

import json
import sys

import numpy as np

VARIANTS = {"avg5": "default", "avg10": "default"}  # call 1: the default's live curve


def device_runs(paths: list[str]):
    """(variant, seed, run, clustering epochs, metric prefix) of every run in the ``--json`` files: call 1's
    averaged runs stand for the default through their live weights (prefix ``live_``); runs without a clustering
    phase (the supervised ones) come with no clustering epochs."""
    for path in paths:
        for name, run in json.load(open(path))["runs"].items():
            variant, seed = name.rsplit("_seed", 1)
            history = [h for h in run["history"] if "test_cluster_acc" in h]
            yield VARIANTS.get(variant, variant), int(seed), run, history, "live_" if variant in VARIANTS else ""


def main(paths: list[str]) -> None:
    rows: dict[str, dict[int, dict]] = {}
    for variant, seed, run, history, p in device_runs(paths):
        if not history:  # the supervised runs have no clustering phase
            h = run["history"]
            best = max(h, key=lambda r: r["val_class_acc"])
            rows.setdefault(variant, {})[seed] = {"sel": best["test_class_acc"], "last": h[-1]["test_class_acc"],
                                                  "last4": np.mean([r["test_class_acc"] for r in h[-4:]])}
            continue
        best = max(history, key=lambda r: r[f"{p}val_cluster_acc"])
        rows.setdefault(variant, {})[seed] = {
            "sel": best[f"{p}test_cluster_acc"], "nmi": best[f"{p}test_nmi"], "ari": best[f"{p}test_ari"],
            "val": best[f"{p}val_cluster_acc"], "epoch": best["epoch"], "last": history[-1][f"{p}test_cluster_acc"],
            "last4": np.mean([r[f"{p}test_cluster_acc"] for r in history[-4:]]),
            "init": run.get("init_test_cluster_acc", np.nan)}

    keys = ("sel", "val", "nmi", "ari", "last", "last4", "init", "epoch")
    print(f"{'variant':<10} {'seed':>4} " + " ".join(f"{k:>7}" for k in keys))
    for variant, seeds in rows.items():
        for seed in sorted(seeds):
            print(f"{variant:<10} {seed:>4} " + " ".join(f"{seeds[seed].get(k, np.nan):7.3f}" for k in keys))
    print()
    print(f"{'variant':<10} {'n':>4} " + " ".join(f"{k + ' mean':>11} {'std':>5}" for k in keys[:6])
          + "   paired sel - default (seeds)")
    default = rows.get("default", {})
    for variant, seeds in rows.items():
        line = f"{variant:<10} {len(seeds):>4} "
        for k in keys[:6]:
            v = np.array([s.get(k, np.nan) for s in seeds.values()])
            line += f"{np.mean(v):11.3f} {np.std(v, ddof=1) if len(v) > 1 else np.nan:5.3f}"
        common = sorted(set(seeds) & set(default))
        if variant != "default" and common and "nmi" in seeds[common[0]]:
            d = np.array([seeds[s]["sel"] - default[s]["sel"] for s in common])
            se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan
            line += f"   {d.mean():+.3f} +- {se:.3f} ({','.join(map(str, common))})"
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
