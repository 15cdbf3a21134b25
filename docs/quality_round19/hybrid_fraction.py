"""Round 19: the project's own references (ucluster.baselines: k-means on the log hybrid mass, and the best cuts on
the hybrid mass chosen with the labels) fitted and scored on the val jets of round 8's sample at /tmp/jets.parquet,
for several model.hybrid_sd_fraction values -> hybrid_fraction.log.

The cuts use the labels: they say where the hybrid mass separates the classes best, for choosing the fraction on
val (never on test). Columns: fraction, k-means accuracy, best two-cut accuracy (1 GeV grid), share of jets whose
hybrid mass is m_SD."""

from __future__ import annotations

import numpy as np

from ucluster.baselines import _jets, best_cuts, cut_range, kmeans_reference
from ucluster.config import load_config

for fraction in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
    cfg = load_config(None, {"data.path": "/tmp/jets.parquet", "model.hybrid_sd_fraction": fraction})
    val = _jets(cfg, "val")
    km = kmeans_reference(cfg, val, val, ("log_mass_hybrid",))["test_cluster_acc"]
    cuts = best_cuts(cfg, val, val, "mass_hybrid", *cut_range(cfg, "mass_hybrid"))["train_acc"]
    kept = float(np.mean(val["mass_hybrid"] == val["mass_sd"]))
    print(fraction, "kmeans", round(km, 4), "cuts", round(cuts, 4), "sdkept", round(kept, 3))
