"""Round 14, CPU: does a label-free ensemble of UCluster runs beat its members?

The val-selected models of several seeds (``model.keras`` of each run directory) assign the val and test jets.
Every run's clusters are matched to the first run's by the best one-to-one overlap of their assignments (no
labels), then each jet takes the majority cluster (ties: the first run's). Scored with the Hungarian-matched
cluster accuracy; the labels are used only for scoring.

    .venv/bin/python docs/quality_round14/seed_ensemble.py conf/demo.yaml /tmp/jets.parquet /tmp/r13_default_s{1,2,3} \
        > docs/quality_round14/seed_ensemble.log   # round 13 default.sh runs
"""

import sys
from pathlib import Path

import keras
import numpy as np
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import ucluster.model  # noqa: E402,F401 - registers the custom layers
from ucluster.config import load_config  # noqa: E402
from ucluster.data.loader import JetStream  # noqa: E402
from ucluster.train import metrics as M  # noqa: E402

config, data, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
cfg = load_config(config, {"data.path": data})
models = [keras.saving.load_model(f"{r}/model.keras", compile=False) for r in runs]
k = cfg.model.n_clusters


def assign(split: str) -> tuple[np.ndarray, np.ndarray]:
    labels, clusters = [], [[] for _ in models]
    for batch in JetStream(cfg, split).eval_batches(1024):
        valid = batch["valid"] > 0
        labels.append(batch["label"][valid])
        for i, m in enumerate(models):
            d = np.asarray(m({"features": batch["features"], "mask": batch["mask"]}, training=False)["distances"])
            clusters[i].append(d.argmin(-1)[valid])
    return np.concatenate(labels), np.stack([np.concatenate(c) for c in clusters])


def accuracy(y: np.ndarray, c: np.ndarray) -> float:
    return M.cluster_accuracy(M.contingency(c, y, k, len(cfg.data.classes)))


for split in ("val", "test"):
    y, c = assign(split)
    aligned = [c[0]]
    for other in c[1:]:
        overlap = np.zeros((k, k))
        np.add.at(overlap, (other, c[0]), 1)
        rows, cols = linear_sum_assignment(-overlap)
        mapping = dict(zip(rows, cols, strict=True))
        aligned.append(np.array([mapping[v] for v in other]))
    aligned = np.stack(aligned)
    votes = np.stack([(aligned == j).sum(0) for j in range(k)], axis=1)
    top = votes.max(1, keepdims=True)
    vote = np.where((votes == top).sum(1) > 1, aligned[0], votes.argmax(1))
    members = " ".join(f"{accuracy(y, a):.3f}" for a in c)
    agree = (aligned == aligned[0]).all(0).mean()
    print(f"{split}: members {members}; ensemble {accuracy(y, vote):.3f}; all agree on {agree:.1%} of jets")
