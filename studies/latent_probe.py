"""Where the clustering accuracy is lost: in the latent, or in clustering it? A diagnostic of one trained model.

For a saved model (``model.keras`` of a training run) and its dataset, the clustering latent of the train, val and
test jets is computed once, and then on the test split:

* the **linear probe**: a multinomial logistic regression fitted on the training jets' latents *with the true
  labels*. It measures how much class information the latent holds in a linearly readable form; it uses labels,
  so it is a diagnostic, never a way to choose a model or a setting;
* **k-means** (k = model.n_clusters) on the latent, and on its leading principal components;
* a **Gaussian mixture** (full covariances) on the leading principal components;
* the model's own clusters (nearest centroid);
* the **neighbourhood purity**: the fraction of each test jet's 20 nearest training latents (Euclidean, on the
  latent as clustered) that share its class (labels again, a diagnostic): how mixed the classes are locally,
  which is what neighbour-based clustering (k-means, SCAN) works from. It is not a bound on the accuracy: on
  (m, m_SD) it is 0.74 where trees trained on the labels reach 0.81 (docs/clustering-quality.md, round 13).

A latent whose linear probe is far above every clustering of it holds the classes, and the loss is in the
clustering; a probe close to them says the representation itself is the limit.

    KERAS_BACKEND=jax python -m studies.latent_probe --model runs/train/model.keras --data jets.parquet --json p.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ucluster.config import add_config_arguments, load_config, overrides_from_args  # noqa: E402

OBSERVABLES = ("mass", "mass_sd", "tau21", "tau32")
NEIGHBOURS = 20  # training latents around each test jet for the neighbourhood purity


def latents(model, cfg, split: str, max_jets: int) -> dict[str, np.ndarray]:
    """Clustering latent, nearest centroid and class index of the selected jets of one split (at most
    ``max_jets``, spread over every file)."""
    from ucluster.data.loader import JetStream, prefetch

    parts: dict[str, list[np.ndarray]] = {"latent": [], "cluster": []}
    for batch in prefetch(JetStream(cfg, split, targets=False).eval_batches(2048, max_jets)):
        out = model({"features": batch["features"], "mask": batch["mask"]}, training=False)
        valid = batch["valid"] > 0
        parts["latent"].append(np.asarray(out["latent"])[valid])
        parts["cluster"].append(np.asarray(out["distances"]).argmin(-1)[valid])
        for key in ("label", *OBSERVABLES):  # the jet observables too, when the dataset has them
            if key in batch:
                parts.setdefault(key, []).append(batch[key][valid])
    return {k: np.concatenate(v) for k, v in parts.items()}


def accuracy(pred: np.ndarray, label: np.ndarray, k: int, n_classes: int) -> float:
    """Cluster accuracy (best one-to-one matching of clusters to classes)."""
    from ucluster.train import metrics as M

    return float(M.cluster_accuracy(M.contingency(pred, label, k, n_classes)))


def probe(train: dict, test: dict, k: int, n_classes: int, seed: int, dims: tuple[int, ...]) -> dict[str, float]:
    """Every figure of the module docstring, on the test jets, from models fitted on the training jets."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import NearestNeighbors

    x, xt = train["latent"].astype(np.float64), test["latent"].astype(np.float64)
    lr = LogisticRegression(max_iter=2000).fit(x, train["label"])
    out = {"linear_probe": float((lr.predict(xt) == test["label"]).mean()),
           "model_clusters": accuracy(test["cluster"], test["label"], k, n_classes),
           "kmeans_latent": accuracy(KMeans(k, n_init=10, random_state=seed).fit(x).predict(xt), test["label"],
                                     k, n_classes)}
    neighbours = NearestNeighbors(n_neighbors=NEIGHBOURS).fit(x).kneighbors(xt, return_distance=False)
    out["neighbourhood_purity"] = float(np.mean(train["label"][neighbours] == test["label"][:, None]))
    pca = PCA(n_components=max(dims), random_state=seed).fit(x)
    z, zt = pca.transform(x), pca.transform(xt)
    out["pca_explained"] = [float(v) for v in np.cumsum(pca.explained_variance_ratio_)[[d - 1 for d in dims]]]
    for d in dims:
        km = KMeans(k, n_init=10, random_state=seed).fit(z[:, :d])
        out[f"kmeans_pca{d}"] = accuracy(km.predict(zt[:, :d]), test["label"], k, n_classes)
        gm = GaussianMixture(k, covariance_type="full", n_init=3, random_state=seed).fit(z[:, :d])
        out[f"gmm_pca{d}"] = accuracy(gm.predict(zt[:, :d]), test["label"], k, n_classes)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="a saved model (model.keras of a training run)")
    parser.add_argument("--config", default=None, help="YAML configuration (default: conf/ucluster.yaml)")
    parser.add_argument("--data", dest="cfg__data__path", default=None, help="Parquet dataset")
    parser.add_argument("--train-jets", type=int, default=30000, help="training jets the probes are fitted on")
    parser.add_argument("--dims", default="2,3,5,10", help="principal components clustered, comma-separated")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--dump", help="also write the latents (float16), clusters, labels and jet observables of "
                                       "the train sample, val and test to DUMP_train.npz and DUMP_eval.npz")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    import keras

    import ucluster.model  # noqa: F401  (registers the custom layers for loading)

    cfg = load_config(args.config, overrides_from_args(args))
    if not Path(args.model).is_file():
        parser.error(f"--model {args.model}: no such file")
    model = keras.saving.load_model(args.model, compile=False)
    train, test = latents(model, cfg, "train", args.train_jets), latents(model, cfg, "test", 0)
    dims = tuple(int(d) for d in args.dims.split(","))
    figures = {"model": args.model, "train_jets": len(train["label"]), "test_jets": len(test["label"]),
               **probe(train, test, cfg.model.n_clusters, len(cfg.data.classes), cfg.train.seed, dims)}
    for name, value in figures.items():
        print(f"{name:>16}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    if args.dump:
        def arrays(jets: dict, prefix: str = "") -> dict:
            return {prefix + k: (v.astype(np.float16) if k == "latent" else v) for k, v in jets.items()}

        val = latents(model, cfg, "val", 0)
        np.savez(f"{args.dump}_train.npz", **arrays(train))
        np.savez(f"{args.dump}_eval.npz", **arrays(val, "val_"), **arrays(test, "test_"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
