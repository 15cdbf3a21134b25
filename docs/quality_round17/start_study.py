"""Which label-free k-means start does deep k-means best begin from? Compared on pretrained models, on val.

Round 16's default starts k-means on the classifier's expected bin of the hybrid mass (one number per jet; 10
restarts, the lowest inertia kept). On 4 of 5 GPU seeds that start scored 0.60-0.63 and on one 0.79. gpu1.sh
trained the default's 20 pretraining epochs for 8 seeds; this script takes each model (CPU, the production
loader), the k-means sample the loop would take (the first ``train.kmeans_sample`` training jets of
:meth:`JetStream.eval_batches`) and every val/test jet, and scores several starts, each built the way the loop
builds one: a partition of the k-means sample -> each centroid the mean latent of its part -> jets assigned to
the nearest centroid. Labels are used only to score.

    python docs/quality_round17/start_study.py --models /tmp/r17 --data /tmp/jets.parquet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ucluster.config import load_config  # noqa: E402
from ucluster.data.loader import JetStream  # noqa: E402
from ucluster.train import metrics as M  # noqa: E402
from ucluster.train.loop import (  # noqa: E402
    class_probabilities,
    n_classes,
    partition_means,
    target_coordinates,
)


def outputs(model, cfg, split: str, max_jets: int = 0) -> dict:
    """logits, latent and labels of the split's selected jets (the first ``max_jets`` as the loop reads them)."""
    stream = JetStream(cfg, split, 0, 1, targets=False)
    parts: dict[str, list] = {"logits": [], "latent": [], "label": []}
    for b in stream.eval_batches(cfg.train.batch_size, max_jets):
        out = model({"features": b["features"], "mask": b["mask"]}, training=False)
        keep = b["valid"] > 0
        parts["logits"].append(np.asarray(out["logits"])[keep])
        parts["latent"].append(np.asarray(out["latent"])[keep])
        parts["label"].append(b["label"][keep])
    return {k: np.concatenate(v) for k, v in parts.items()}


def cached(path: Path, cfg, cache: Path) -> dict:
    f = cache / f"{path.parent.name}.npz"
    if f.exists():
        z = np.load(f)
        return {s: {k: z[f"{s}_{k}"] for k in ("logits", "latent", "label")} for s in ("km", "val", "test")}
    import keras

    import ucluster.model  # noqa: F401 - the custom layers

    model = keras.saving.load_model(path, compile=False)
    d = {"km": outputs(model, cfg, "train", cfg.train.kmeans_sample), "val": outputs(model, cfg, "val"),
         "test": outputs(model, cfg, "test")}
    np.savez(f, **{f"{s}_{k}": v for s, o in d.items() for k, v in o.items()})
    return d


def standardise(x: np.ndarray) -> np.ndarray:
    s = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(s > 1e-9, s, 1.0)


def partitions(cfg, km: dict, seed: int) -> dict[str, np.ndarray]:
    """Label-free partitions of the k-means sample into model.n_clusters parts, by name."""
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    k = cfg.model.n_clusters
    coord = standardise(target_coordinates(cfg, km["logits"]))
    p = class_probabilities(km["logits"])
    out = {"kmeans_target (round16)": KMeans(k, n_init=10, random_state=seed).fit_predict(coord),
           "kmeans_latent": KMeans(k, n_init=10, random_state=seed).fit_predict(km["latent"]),
           "kmeans_probs": KMeans(k, n_init=10, random_state=seed).fit_predict(p),
           "kmeans_sqrt_probs": KMeans(k, n_init=10, random_state=seed).fit_predict(np.sqrt(p))}
    for cov in ("full", "tied"):
        g = GaussianMixture(k, covariance_type=cov, n_init=10, random_state=seed).fit(coord)
        out[f"gmm_target_{cov}"] = g.predict(coord)
    # every restart of the 1-D k-means, to see how the scores spread against the inertia
    for r in range(10):
        m = KMeans(k, n_init=1, random_state=seed * 100 + r).fit(coord)
        centres = "/".join(f"{c:.2f}" for c in sorted(m.cluster_centers_[:, 0]))
        out[f"restart{r} inertia={m.inertia_:.0f} centres={centres}"] = m.labels_
    return out


def score(cfg, part: np.ndarray, km: dict, split: dict) -> float:
    k = cfg.model.n_clusters
    if len(np.unique(part)) < k:
        return float("nan")
    mu = partition_means(km["latent"], part, k)
    d = ((split["latent"][:, None, :] - mu[None]) ** 2).sum(-1)
    table = M.contingency(d.argmin(1), split["label"], k, len(cfg.data.classes))
    return M.cluster_accuracy(table)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", required=True, help="folder with <run>/<run>_seed<N>/model.keras (gpu1.sh)")
    p.add_argument("--data", required=True)
    p.add_argument("--cache", default="/tmp/r17/cache")
    a = p.parse_args(argv)
    cfg = load_config(None, {"data.path": a.data})
    assert n_classes(cfg) == cfg.model.mass_bins
    Path(a.cache).mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(a.models).glob("*/*/model.keras")):
        seed = int(path.parent.name.rsplit("seed", 1)[1])
        d = cached(path, cfg, Path(a.cache))
        print(f"== {path.parent.name}: {len(d['km']['label'])} k-means jets, {len(d['val']['label'])} val, "
              f"{len(d['test']['label'])} test", flush=True)
        for name, part in partitions(cfg, d["km"], seed).items():
            print(f"  {name:60s} val {score(cfg, part, d['km'], d['val']):.3f}  "
                  f"test {score(cfg, part, d['km'], d['test']):.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
