"""Why deep k-means leaves the good start: is the start's partition a fixed point of k-means on the latent?

Round 17's call 2 shows the clustering phase holding the k-means start (test about 0.78) for 5-15 epochs and then
falling to about 0.62-0.65, the score of k-means on the latent itself. This script takes round 17's eight
GPU-pretrained default models (their outputs cached on the CPU by ``quality_round17/start_study.py``: the
k-means sample, every val and test jet), builds the loop's start (k-means on the output probabilities -> each
centroid the mean latent of its part), and then runs plain Lloyd iterations on the latent from those centroids:
what deep k-means would converge to if the network did not move. Also: the start's partition scored in the
probability space itself (jets to the nearest probability centroid), a logistic regression on the latent
trained to reproduce the start's partition, and starts from other views of the same outputs (log p, centred
logits, cumulative p). Labels only score.

    python docs/quality_round18/latent_fixed_point.py --cache /tmp/r17/cache > latent_fixed_point.log
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ucluster.train import metrics as M  # noqa: E402
from ucluster.train.loop import class_probabilities, partition_means  # noqa: E402

K = 3
LLOYD_REPORTED = (0, 1, 2, 5, 10)


def accuracy(assign: np.ndarray, label: np.ndarray) -> float:
    return M.cluster_accuracy(M.contingency(assign, label, K, K))


def nearest(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)


def study(d: dict, seed: int) -> dict[str, float]:
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression

    km, val = d["km"], d["val"]
    p = class_probabilities(km["logits"])
    kmeans = KMeans(K, n_init=10, random_state=seed).fit(p)
    out = {"probs partition, jets to the nearest probability centroid":
           accuracy(kmeans.predict(class_probabilities(val["logits"])), val["label"])}
    centres = partition_means(km["latent"], kmeans.labels_, K)
    for it in range(max(LLOYD_REPORTED) + 1):
        if it in LLOYD_REPORTED:
            out[f"latent centroids after {it:2d} Lloyd steps on the latent"] = accuracy(
                nearest(val["latent"], centres), val["label"])
        centres = partition_means(km["latent"], nearest(km["latent"], centres), K, centres)
    clf = LogisticRegression(max_iter=2000).fit(km["latent"], kmeans.labels_)
    out["logistic regression on the latent, fit to the start's partition"] = accuracy(
        clf.predict(val["latent"]), val["label"])
    logits = km["logits"]
    for name, view in {"log p": np.maximum(np.log(np.maximum(p, 1e-12)), -20.0),
                       "centred logits": logits - logits.mean(1, keepdims=True),
                       "cumulative p": np.cumsum(p, 1)}.items():
        part = KMeans(K, n_init=10, random_state=seed).fit_predict(view)
        out[f"start from k-means on {name} (latent centroids)"] = accuracy(
            nearest(val["latent"], partition_means(km["latent"], part, K)), val["label"])
    return out


def main(argv: list[str] | None = None) -> int:
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("--cache", default="/tmp/r17/cache", help="start_study.py's cached outputs (<run>.npz)")
    args = a.parse_args(argv)
    table: dict[str, list[float]] = {}
    files = sorted(Path(args.cache).glob("*.npz"))
    if not files:
        raise SystemExit(f"{args.cache}: no cached model outputs (run quality_round17/start_study.py first)")
    for f in files:
        z = np.load(f)
        d = {s: {k: z[f"{s}_{k}"] for k in ("logits", "latent", "label")} for s in ("km", "val")}
        for name, value in study(d, int(f.stem.rsplit("seed", 1)[1])).items():
            table.setdefault(name, []).append(value)
    print(f"val cluster accuracy over {len(files)} models ({', '.join(f.stem for f in files)}): mean, then per model")
    for name, values in table.items():
        print(f"  {name:66s} {np.mean(values):.3f}  " + " ".join(f"{v:.3f}" for v in values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
