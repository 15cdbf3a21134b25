"""Round 13, CPU: can nearest-neighbour consistency (SCAN) read the classes out of a pretrained latent where
k-means cannot? On a dump written by ``studies.latent_probe --dump PREFIX`` (20 000 training latents, every val
and test one):

* the k-NN label agreement: the fraction of each training jet's 20 nearest neighbours (Euclidean, in the raw,
  standardised and 32-PC whitened latent) that share its true class. It uses labels, so it is a diagnostic only:
  neighbour-based clustering cannot be purer than the neighbourhoods it is built on;
* SCAN's clustering step without labels: a small head (64 ReLU units, 3 softmax outputs) trained 30 epochs with
  Adam to give each jet and a random one of its 20 neighbours the same cluster (-log <p_a, p_n>), minus
  ``w`` x the entropy of the batch-mean assignment (against a single cluster), for w = 2 and 5 and 3 seeds;
  fitted on the training latents, scored on val / test (Hungarian-matched cluster accuracy).

    .venv/bin/python docs/quality_round13/scan_latent.py /tmp/cpu_pre10_lat > docs/quality_round13/scan_demo10.log
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ucluster.train import metrics as M  # noqa: E402

NEIGHBOURS, EPOCHS, BATCH, LR = 20, 30, 256, 1e-3


def accuracy(pred: np.ndarray, label: np.ndarray) -> float:
    return float(M.cluster_accuracy(M.contingency(pred, label, 3, 3)))


def probabilities(params: dict, z: jax.Array) -> jax.Array:
    return jax.nn.softmax(jax.nn.relu(z @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"])


def scan_loss(params: dict, anchors: jax.Array, neighbours: jax.Array, entropy_weight: float) -> jax.Array:
    pa, pn = probabilities(params, anchors), probabilities(params, neighbours)
    consistency = -jnp.mean(jnp.log(jnp.sum(pa * pn, axis=-1) + 1e-8))
    mean = pa.mean(axis=0)
    return consistency + entropy_weight * jnp.sum(mean * jnp.log(mean + 1e-8))


def train_head(z: np.ndarray, neighbours: np.ndarray, entropy_weight: float, seed: int) -> dict:
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    d = z.shape[1]
    params = {"w1": jax.random.normal(k1, (d, 64)) / np.sqrt(d), "b1": jnp.zeros(64),
              "w2": jax.random.normal(k2, (64, 3)) / 8.0, "b2": jnp.zeros(3)}
    first = jax.tree.map(jnp.zeros_like, params)
    second = jax.tree.map(jnp.zeros_like, params)

    @jax.jit
    def step(params, first, second, t, anchors, near):
        grads = jax.grad(scan_loss)(params, anchors, near, entropy_weight)
        first = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, first, grads)
        second = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, second, grads)
        params = jax.tree.map(lambda p, m, v: p - LR * (m / (1 - 0.9**t)) / (jnp.sqrt(v / (1 - 0.999**t)) + 1e-8),
                              params, first, second)
        return params, first, second

    rng, t, zj = np.random.default_rng(seed), 0, jnp.asarray(z, jnp.float32)
    for _ in range(EPOCHS):
        order = rng.permutation(len(z))
        for i in range(0, len(z), BATCH):
            batch, t = order[i:i + BATCH], t + 1
            near = neighbours[batch, rng.integers(0, NEIGHBOURS, len(batch))]
            params, first, second = step(params, first, second, t, zj[batch], zj[near])
    return params


def main(prefix: str) -> None:
    train, evals = np.load(prefix + "_train.npz"), np.load(prefix + "_eval.npz")
    x, y = train["latent"].astype(np.float32), train["label"]
    mean, std = x.mean(0), x.std(0) + 1e-6
    whiten = PCA(min(32, x.shape[1]), whiten=True).fit(x)
    spaces = {"raw": lambda a: a, "standardised": lambda a: (a - mean) / std, "whitened 32 PCs": whiten.transform}
    for name, f in spaces.items():
        z = f(x).astype(np.float32)
        _, idx = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(z).kneighbors(z)
        neighbours = idx[:, 1:]
        print(f"{name}: k-NN ({NEIGHBOURS}) label agreement {np.mean(y[neighbours] == y[:, None]):.3f}", flush=True)
        for w in (2.0, 5.0):
            for seed in (0, 1, 2):
                params = train_head(z, neighbours, w, seed)
                pred = {s: np.asarray(probabilities(params, jnp.asarray(f(evals[f"{s}_latent"]), jnp.float32)))
                        .argmax(-1) for s in ("val", "test")}
                print(f"  SCAN entropy weight {w:g} seed {seed}: val {accuracy(pred['val'], evals['val_label']):.3f}"
                      f" test {accuracy(pred['test'], evals['test_label']):.3f}"
                      f" cluster sizes (test) {np.bincount(pred['test'], minlength=3).tolist()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
