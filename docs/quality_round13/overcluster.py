"""Round 13, CPU: would over-clustering help, i.e. are there many small pure clusters in a pretrained latent that a
merge could join into the classes? On a dump written by ``studies.latent_probe --dump PREFIX``: k-means
(k = 3 ... 40, 4 initialisations) on the unit-normalised training latents, the test jets assigned to the nearest
centroid, and then

* the **majority-vote bound**: every cluster given the true class most of its test jets have. It uses labels, so it
  is the best any merge of these clusters could do, not a method;
* a label-free merge: Ward agglomeration of the k centroids into 3.

    .venv/bin/python docs/quality_round13/overcluster.py /tmp/cpu_pre10_lat /tmp/cpu_paper10_lat > overcluster.log
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ucluster.train import metrics as M  # noqa: E402


def unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


for prefix in sys.argv[1:]:
    train, evals = np.load(prefix + "_train.npz"), np.load(prefix + "_eval.npz")
    x, test, label = unit(train["latent"]), unit(evals["test_latent"]), evals["test_label"]
    for k in (3, 6, 10, 20, 40):
        kmeans = KMeans(k, n_init=4, random_state=0).fit(x)
        cluster = kmeans.predict(test)
        majority = np.array([np.bincount(label[cluster == c], minlength=3).argmax() if np.any(cluster == c) else 0
                             for c in range(k)])
        merged = AgglomerativeClustering(3, linkage="ward").fit_predict(kmeans.cluster_centers_)[cluster]
        ward = float(M.cluster_accuracy(M.contingency(merged, label, 3, 3)))
        print(f"{Path(prefix).name} k={k:2d}: majority-vote bound (labels) {np.mean(majority[cluster] == label):.3f},"
              f" Ward merge of the centroids (no labels) {ward:.3f}", flush=True)
