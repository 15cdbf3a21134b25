"""Round 17: the distinct solutions of the 1-D k-means restarts on the expected bin (start_study.py's cache), per
seed: (inertia, the three centres, the two cluster boundaries), in GeV of hybrid mass (bin coordinate c in [0, 1]
-> 10 * 25**c GeV: the 40 log bins over 10-250 GeV). The loop keeps the lowest inertia of its 10 restarts.

    python docs/quality_round17/start_centres.py > docs/quality_round17/start_centres.log
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ucluster.config import load_config  # noqa: E402
from ucluster.train.loop import target_coordinates  # noqa: E402

cfg = load_config(None, {"data.path": "/tmp/jets.parquet"})
for seed in range(1, 9):
    c = target_coordinates(cfg, np.load(f"/tmp/r17/cache/pre_seed{seed}.npz")["km_logits"])[:, 0]
    x = (c - c.mean()) / c.std()
    solutions = {}
    for r in range(10):
        m = KMeans(3, n_init=1, random_state=seed * 100 + r).fit(x[:, None])
        cen = np.sort(m.cluster_centers_[:, 0])
        gev = 10 * 25 ** (cen * c.std() + c.mean())
        bounds = 10 * 25 ** ((cen[:-1] + cen[1:]) / 2 * c.std() + c.mean())
        solutions[tuple(np.round(cen, 1))] = (round(m.inertia_), "/".join(f"{g:.0f}" for g in gev),
                                              "/".join(f"{b:.0f}" for b in bounds))
    print(f"seed {seed}: (inertia, centres GeV, boundaries GeV) " + " ".join(map(str, sorted(solutions.values()))))
