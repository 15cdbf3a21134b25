"""Clustering metrics computed from a contingency table, so workers only need to allreduce a small matrix.

``contingency[k, c]`` counts jets assigned to cluster k whose true class is c. Accuracy uses the best
one-to-one matching of clusters to classes (Hungarian algorithm); NMI (arithmetic normalisation, as
scikit-learn's default) and ARI follow their standard definitions on the same table.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import comb


def contingency(clusters: np.ndarray, labels: np.ndarray, n_clusters: int, n_classes: int,
                weights: np.ndarray | None = None) -> np.ndarray:
    table = np.zeros((n_clusters, n_classes), dtype=np.float64)
    np.add.at(table, (clusters.astype(np.int64), labels.astype(np.int64)), 1.0 if weights is None else weights)
    return table


def hungarian_mapping(table: np.ndarray) -> dict[int, int]:
    """Cluster -> class of the one-to-one matching that maximises the matched jets."""
    rows, cols = linear_sum_assignment(-table)
    return {int(r): int(c) for r, c in zip(rows, cols, strict=True)}


def cluster_accuracy(table: np.ndarray) -> float:
    total = table.sum()
    if total == 0:
        return float("nan")
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / total)


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nmi(table: np.ndarray) -> float:
    n = table.sum()
    if n == 0:
        return float("nan")
    pk, pc = table.sum(axis=1), table.sum(axis=0)
    nz = table > 0
    mi = float((table[nz] / n * np.log(table[nz] * n / np.outer(pk, pc)[nz])).sum())
    hk, hc = _entropy(pk), _entropy(pc)
    if hk == 0 and hc == 0:
        return 1.0
    denom = 0.5 * (hk + hc)
    return float(max(mi, 0.0) / denom) if denom > 0 else 0.0


def ari(table: np.ndarray) -> float:
    n = table.sum()
    if n < 2:
        return float("nan")
    sum_ij = comb(table, 2).sum()
    sum_a, sum_b = comb(table.sum(axis=1), 2).sum(), comb(table.sum(axis=0), 2).sum()
    expected = sum_a * sum_b / comb(n, 2)
    max_index = 0.5 * (sum_a + sum_b)
    if max_index == expected:
        return 1.0
    return float((sum_ij - expected) / (max_index - expected))


def purity_efficiency(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class c, with its matched cluster k: purity = jets of c in k / jets in k; efficiency = ... / jets of c."""
    mapping = hungarian_mapping(table)
    n_classes = table.shape[1]
    purity, efficiency = np.full(n_classes, np.nan), np.full(n_classes, np.nan)
    for k, c in mapping.items():
        if table[k].sum() > 0:
            purity[c] = table[k, c] / table[k].sum()
        if table[:, c].sum() > 0:
            efficiency[c] = table[k, c] / table[:, c].sum()
    return purity, efficiency


def clustering_report(table: np.ndarray) -> dict[str, float]:
    return {"cluster_acc": cluster_accuracy(table), "nmi": nmi(table), "ari": ari(table)}
