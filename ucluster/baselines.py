"""Reference points for the clustering accuracy, computed by the project's own code on the same jets.

The floor: k-means on the jet mass alone (what a latent that encodes only the mass would reach). The best
mass cuts: thresholds on the jet mass chosen with the true labels, i.e. what the mass alone can do at best
(supervised, one variable). The ceiling is the same network trained on the true labels (``jobs/train.py
--supervised``).
"""

from __future__ import annotations

import itertools

import numpy as np

from ucluster.config import Config
from ucluster.data.loader import JetStream
from ucluster.train import metrics as M


def _masses_and_labels(cfg: Config, split: str) -> tuple[np.ndarray, np.ndarray]:
    stream = JetStream(cfg, split)
    mass, label = [], []
    for batch in stream.eval_batches(4096):
        valid = batch["valid"] > 0
        mass.append(batch["mass"][valid])
        label.append(batch["label"][valid])
    return np.concatenate(mass), np.concatenate(label)


def mass_kmeans(cfg: Config) -> dict[str, float]:
    """Fit k-means (k = model.n_clusters) on the training jets' mass; score the test split."""
    from sklearn.cluster import KMeans

    train_mass, _ = _masses_and_labels(cfg, "train")
    test_mass, test_label = _masses_and_labels(cfg, "test")
    km = KMeans(n_clusters=cfg.model.n_clusters, n_init=10, random_state=cfg.train.seed)
    km.fit(train_mass[:, None])
    table = M.contingency(km.predict(test_mass[:, None]), test_label, cfg.model.n_clusters, len(cfg.data.classes))
    purity, _ = M.purity_efficiency(table)
    return {**{f"test_{k}": v for k, v in M.clustering_report(table).items()},
            **{f"purity_{c}": float(p) for c, p in zip(cfg.data.classes, purity, strict=True)},
            "train_jets": int(len(train_mass)), "test_jets": int(len(test_mass))}


def best_mass_cuts(cfg: Config, step_gev: float = 1.0) -> dict[str, float]:
    """The supervised mass-only reference: the ``n_clusters - 1`` mass thresholds (on a grid of ``step_gev``
    over the selection window) that maximise the clustering accuracy on the training split, scored on the
    test split. Exhaustive over the grid, so only for 2 or 3 clusters."""
    k = cfg.model.n_clusters
    if k not in (2, 3):
        raise ValueError(f"best_mass_cuts: exhaustive search is implemented for 2 or 3 clusters, not {k}")
    n_classes = len(cfg.data.classes)
    train_mass, train_label = _masses_and_labels(cfg, "train")
    edges = np.arange(cfg.data.mass_min, cfg.data.mass_max + step_gev, step_gev)
    # below[c, i]: training jets of class c with mass < edges[i]; a cut set splits these counts into bins
    hist = np.stack([np.histogram(train_mass[train_label == c], edges)[0] for c in range(n_classes)])
    below = np.concatenate([np.zeros((n_classes, 1)), np.cumsum(hist, axis=1)], axis=1)
    best, best_cuts = -1.0, ()
    for cuts in itertools.combinations(range(1, len(edges) - 1), k - 1):
        bounds = [0, *cuts, len(edges) - 1]
        table = np.stack([below[:, b] - below[:, a] for a, b in itertools.pairwise(bounds)])  # (k, classes)
        acc = M.cluster_accuracy(table)
        if acc > best:
            best, best_cuts = acc, tuple(float(edges[c]) for c in cuts)
    test_mass, test_label = _masses_and_labels(cfg, "test")
    table = M.contingency(np.digitize(test_mass, best_cuts), test_label, k, n_classes)
    return {**{f"test_{key}": v for key, v in M.clustering_report(table).items()},
            "cuts_gev": list(best_cuts), "train_acc": float(best)}
