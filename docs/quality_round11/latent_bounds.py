"""Round 11, CPU: how far can a clustering of this latent (or of the jet observables) go at all?

For a dumped latent (``studies.latent_probe --dump PREFIX``) and the jet observables stored with it, this prints
- the linear probe (labels) and the k-NN label purity: how class-pure the neighbourhoods are that neighbour-based
  objectives (SCAN) rely on;
- oracle-merge bounds: a mixture or k-means with k = 3 ... 40 components is fitted *without* labels, then every
  component is given the majority label of its training jets. No label-free merge of those components can score
  higher on test, so this bounds every method that reads the density at that resolution;
- SCAN on the fixed latent: a 3-way head trained so that a jet and one of its 20 latent neighbours get the same
  cluster, plus an entropy term that keeps the clusters filled (no labels);
- a physicist's label-free reading of the soft-drop mass spectrum: its smoothed histogram is cut at every valley,
  the three most populated basins are the clusters and smaller basins join the nearest of them; beside it the
  best two soft-drop-mass cuts chosen with the labels.

Everything is fitted on the dumped training jets and scored on val / test (cluster accuracy, Hungarian matched,
or majority-merged where marked).

    .venv/bin/python docs/quality_round11/latent_bounds.py PREFIX > docs/quality_round11/bounds_NAME.log
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from scipy.ndimage import gaussian_filter1d
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ucluster.train import metrics as M  # noqa: E402

prefix = sys.argv[1]
train, evals = np.load(prefix + "_train.npz"), np.load(prefix + "_eval.npz")
y, yv, yt = train["label"], evals["val_label"], evals["test_label"]


def hungarian(label: np.ndarray, cluster: np.ndarray) -> float:
    return M.cluster_accuracy(M.contingency(np.asarray(cluster), label, 3, 3))


def majority(c_train: np.ndarray, c_eval: np.ndarray, label: np.ndarray, k: int) -> float:
    """Accuracy when each component takes the majority training label (labels used: an upper bound)."""
    counts = np.zeros((k, 3))
    np.add.at(counts, (c_train, y), 1)
    return float((counts.argmax(1)[c_eval] == label).mean())


def observables(d, p: str = "") -> np.ndarray:
    return np.c_[np.log(d[p + "mass"]), np.log1p(d[p + "mass_sd"]), d[p + "tau21"], d[p + "tau32"]]


X = train["latent"].astype(np.float32)
V, T = evals["val_latent"].astype(np.float32), evals["test_latent"].astype(np.float32)
mu, sd = X.mean(0), X.std(0) + 1e-6
X, V, T = (X - mu) / sd, (V - mu) / sd, (T - mu) / sd
print(f"{len(X)} training latents of dimension {X.shape[1]}; val {len(V)}, test {len(T)}")
own_v, own_t = hungarian(yv, evals["val_cluster"]), hungarian(yt, evals["test_cluster"])
print(f"model's clusters: val {own_v:.3f} test {own_t:.3f}")
probe = LogisticRegression(max_iter=3000).fit(X, y)
print(f"linear probe (labels): val {(probe.predict(V) == yv).mean():.3f} test {(probe.predict(T) == yt).mean():.3f}")
_, idx = NearestNeighbors(n_neighbors=21).fit(X).kneighbors(X)
idx = idx[:, 1:]
print(f"k-NN label purity (20 neighbours in the standardised latent): {(y[idx] == y[:, None]).mean():.3f}")

pca = PCA(16, random_state=0).fit(X)
Z, ZV, ZT = (pca.transform(a).astype(np.float64) for a in (X, V, T))
spaces = {"latent, 16 PCs": (Z, ZV, ZT)}
O, OV, OT = observables(train), observables(evals, "val_"), observables(evals, "test_")
o_mu, o_sd = O.mean(0), O.std(0)
O, OV, OT = (O - o_mu) / o_sd, (OV - o_mu) / o_sd, (OT - o_mu) / o_sd
spaces["(log m, log m_SD)"] = (O[:, :2], OV[:, :2], OT[:, :2])
spaces["(log m, log m_SD, tau21, tau32)"] = (O, OV, OT)
for name, (A, AV, AT) in spaces.items():
    for k in (3, 10, 20, 40):
        gm = GaussianMixture(k, covariance_type="full", random_state=0, n_init=2, reg_covar=1e-3).fit(A)
        km = KMeans(k, n_init=4, random_state=0).fit(A)
        g_tr, k_tr = gm.predict(A), km.labels_
        g_v, g_t, k_v, k_t = gm.predict(AV), gm.predict(AT), km.predict(AV), km.predict(AT)
        line = (f"{name}, k={k:2d}, majority-merged (labels) val/test: mixture {majority(g_tr, g_v, yv, k):.3f}"
                f"/{majority(g_tr, g_t, yt, k):.3f}, k-means {majority(k_tr, k_v, yv, k):.3f}"
                f"/{majority(k_tr, k_t, yt, k):.3f}")
        if k == 3:
            line += f"; Hungarian (no labels) mixture {hungarian(yt, g_t):.3f} k-means {hungarian(yt, k_t):.3f}"
        print(line, flush=True)


def scan(entropy_weight: float, hidden: int, seed: int, epochs: int = 30) -> tuple[float, float, np.ndarray]:
    """SCAN's clustering step on the fixed latent: -log <p(jet), p(neighbour)> - w * H(mean p); Adam 1e-3."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    d = X.shape[1]
    params = {"w1": jax.random.normal(k1, (d, hidden)) / np.sqrt(d), "b1": jnp.zeros(hidden),
              "w2": jax.random.normal(k2, (hidden, 3)) / np.sqrt(hidden), "b2": jnp.zeros(3)}

    def logits(p, x):
        return jax.nn.relu(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    def loss(p, xa, xn):
        pa, pn = jax.nn.softmax(logits(p, xa)), jax.nn.softmax(logits(p, xn))
        mean = pa.mean(0)
        return -jnp.log(jnp.sum(pa * pn, 1) + 1e-8).mean() + entropy_weight * jnp.sum(mean * jnp.log(mean + 1e-8))

    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)

    @jax.jit
    def step(p, m, v, t, xa, xn):
        g = jax.grad(loss)(p, xa, xn)
        m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
        p = jax.tree_util.tree_map(
            lambda w, a, b: w - 1e-3 * (a / (1 - 0.9**t)) / (jnp.sqrt(b / (1 - 0.999**t)) + 1e-8), p, m, v)
        return p, m, v

    rng, m, v, t = np.random.default_rng(seed), zeros, zeros, 0
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for b in range(0, len(X) - 255, 256):
            i = order[b:b + 256]
            t += 1
            params, m, v = step(params, m, v, t, X[i], X[idx[i, rng.integers(0, idx.shape[1], len(i))]])
    pv, pt = np.argmax(logits(params, V), 1), np.argmax(logits(params, T), 1)
    return hungarian(yv, pv), hungarian(yt, pt), np.bincount(pt, minlength=3)


for w in (2.0, 5.0):
    runs = [scan(w, 128, seed) for seed in range(2)]
    print(f"SCAN head (128 hidden, entropy weight {w}), seeds 0-1 (val/test): "
          + ", ".join(f"{a:.3f}/{b:.3f} sizes {list(s)}" for a, b, s in runs), flush=True)

msd, msd_t = evals["val_mass_sd"], evals["test_mass_sd"]
edges = np.arange(0.0, 252.0, 2.0)
hist = np.histogram(train["mass_sd"], edges)[0].astype(float)
for sigma in (1, 2, 3, 4):
    smooth = gaussian_filter1d(hist, sigma)
    valleys = [edges[i] + 1 for i in range(1, len(smooth) - 1)
               if smooth[i] < smooth[i - 1] and smooth[i] <= smooth[i + 1]]
    cuts = np.array([0.0, *valleys, np.inf])
    sizes = np.bincount(np.digitize(train["mass_sd"], cuts) - 1, minlength=len(cuts) - 1)
    keep = np.sort(np.argsort(sizes)[-3:])
    nearest = np.array([keep[np.argmin(np.abs(keep - j))] for j in range(len(sizes))])
    c_v, c_t = (np.searchsorted(keep, nearest[np.digitize(a, cuts) - 1]) for a in (msd, msd_t))
    print(f"m_SD spectrum modes (no labels; smoothing {2 * sigma} GeV): valleys {[float(v) for v in valleys]} GeV, "
          f"3 largest basins kept, the rest joined to the nearest: "
          f"val {hungarian(yv, c_v):.3f} test {hungarian(yt, c_t):.3f}")
best = max((hungarian(yv, np.where(msd < a, 0, np.where(msd < b, 1, 2))), a, b)
           for a in np.arange(60, 100, 2.5) for b in np.arange(95, 160, 2.5) if b > a)
c_t = np.where(msd_t < best[1], 0, np.where(msd_t < best[2], 1, 2))
print(f"best two m_SD cuts chosen with the val labels ({best[1]:.1f}, {best[2]:.1f} GeV): val {best[0]:.3f} "
      f"test {hungarian(yt, c_t):.3f}")
