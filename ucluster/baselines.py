"""Reference points for the clustering accuracy, computed by the project's own code on the same jets.

The floor: k-means on the jet mass alone (what a latent that encodes only the mass would reach). The ceiling
is the same network trained on the true labels (``jobs/train.py --supervised``).
"""

from __future__ import annotations

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
