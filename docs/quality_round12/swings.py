"""Round 12: the live weights against their tail average, from the EPOCH lines of ``studies.quality_gpu sweep``
logs (or of ``cpu/history.py`` for ``jobs.train`` runs) of runs with ``train.average_epochs`` > 1.

Per run and per model (live, averaged): the test cluster accuracy at the clustering epoch best on val, at the last
epoch (what a user without labels gets), averaged over the last 4, and its mean absolute change between epochs.
The last lines: the mean over runs, and the mean paired difference (averaged - live) with its standard error.

    python docs/quality_round12/swings.py LOG... > swings.log
"""

import re
import sys

import numpy as np


def curves(path: str) -> dict[str, list[tuple[int, dict]]]:
    runs: dict[str, list[tuple[int, dict]]] = {}
    for line in open(path):
        if line.startswith("EPOCH "):
            name, epoch = line.split()[1:3]
            runs.setdefault(name, []).append((int(epoch), {k: float(v) for k, v in
                                                          re.findall(r"(\w+)=([-\d.naife]+)", line)}))
    return runs


def figures(rows: list[dict], prefix: str) -> list[float]:
    val = np.array([r[f"{prefix}val_cluster_acc"] for r in rows])
    test = np.array([r[f"{prefix}test_cluster_acc"] for r in rows])
    return [test[int(np.argmax(val))], test[-1], test[-4:].mean(), np.abs(np.diff(test)).mean()]


names = ("best-val", "last", "last4", "|d|")
print(f"{'run':<16} {'epochs':>6}  " + "  ".join(f"{'live ' + n:>13} {'avg ' + n:>12}" for n in names))
table = []
for path in sys.argv[1:]:
    for name, rows in curves(path).items():
        clu = [r for _, r in sorted(rows, key=lambda t: t[0]) if "live_test_cluster_acc" in r]
        if len(clu) < 2:
            continue
        live, avg = figures(clu, "live_"), figures(clu, "")
        table.append((live, avg))
        print(f"{name:<16} {len(clu):>6}  " + "  ".join(f"{a:13.3f} {b:12.3f}" for a, b in zip(live, avg, strict=True)))
if table:
    live, avg = (np.array(x) for x in zip(*table, strict=True))
    print(f"{'mean':<16} {'':>6}  " + "  ".join(f"{a:13.3f} {b:12.3f}"
                                                for a, b in zip(live.mean(0), avg.mean(0), strict=True)))
    d = avg - live
    se = d.std(0, ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.full(d.shape[1], np.nan)
    print(f"{'avg - live':<16} {len(d):>6}  " + "  ".join(f"{m:+13.3f} {'+-' + format(s, '.3f'):>12}"
                                                         for m, s in zip(d.mean(0), se, strict=True)))
