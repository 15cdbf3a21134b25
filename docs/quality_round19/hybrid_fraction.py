"""Round 19: labelled best cuts and 1-D k-means on the log hybrid mass of the val jets (round 8's sample at
/tmp/jets.parquet; W/Z/t, 10 < m < 250 GeV) for several model.hybrid_sd_fraction values -> hybrid_fraction.log.

The cuts use the labels: they say where the hybrid mass separates the classes best, for choosing the fraction on
val (never on test). Columns: fraction, k-means accuracy, best two-cut accuracy, share of jets whose hybrid mass is
m_SD."""

from __future__ import annotations

import glob

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans

from ucluster.data.loader import hybrid_mass

W, T = 2, 4  # dataset label ids of w and t (z between): g, q, w, z, t


def load(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    files = glob.glob(f"/tmp/jets.parquet/split={split}/*.parquet")
    table = pa.concat_tables([pq.read_table(f, columns=["label", "jet_mass", "jet_mass_sd"]) for f in files])
    label, mass, mass_sd = (table[c].to_numpy() for c in ("label", "jet_mass", "jet_mass_sd"))
    keep = (label >= W) & (label <= T) & (mass > 10) & (mass < 250)
    return label[keep] - W, mass[keep], mass_sd[keep]


def accuracy(cluster: np.ndarray, label: np.ndarray) -> float:
    table = np.zeros((3, 3))
    np.add.at(table, (cluster, label), 1)
    rows, cols = linear_sum_assignment(-table)
    return table[rows, cols].sum() / len(label)


def best_cuts(x: np.ndarray, label: np.ndarray) -> float:
    edges = np.quantile(x, np.linspace(0.02, 0.98, 60))
    return max(accuracy(np.digitize(x, [a, b]), label) for i, a in enumerate(edges) for b in edges[i + 1:])


label, mass, mass_sd = load("val")
for fraction in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
    x = np.log(hybrid_mass(mass, mass_sd, fraction))
    km = KMeans(3, n_init=10, random_state=0).fit_predict(x[:, None])
    print(fraction, "kmeans", round(accuracy(km, label), 4), "cuts", round(best_cuts(x, label), 4),
          "sdkept", round(float(np.mean(mass_sd >= fraction * mass)), 3))
