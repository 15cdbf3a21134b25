"""Round 10, CPU: unsupervised readings of a dumped latent (``studies.latent_probe --dump PREFIX``) beside the
linear probe. Everything is fitted on the dumped training jets and scored on val / test (cluster accuracy):
k-means and full-covariance Gaussian mixtures on the leading principal components (plain and whitened, several
seeds), spectral clustering on a k-NN graph (6 000 jets, the rest by 15 nearest neighbours), and a linear 3-way
head trained to maximise the mutual information between jet and cluster (regularised information maximisation).

    .venv/bin/python docs/quality_round10/cpu/latent_clustering.py /tmp/lat > docs/quality_round10/cpu/lat.log
"""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.cluster import KMeans, SpectralClustering
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KNeighborsClassifier

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from ucluster.train import metrics as M  # noqa: E402

prefix = sys.argv[1]
train, evals = np.load(prefix + "_train.npz"), np.load(prefix + "_eval.npz")
X, y = train["latent"].astype(np.float64), train["label"]
V, yv = evals["val_latent"].astype(np.float64), evals["val_label"]
T, yt = evals["test_latent"].astype(np.float64), evals["test_label"]


def acc(label, cluster):
    return M.cluster_accuracy(M.contingency(cluster, label, 3, 3))


def show(name, model_v, model_t):
    print(f"{name}: val {acc(yv, model_v):.3f} test {acc(yt, model_t):.3f}", flush=True)


print(f"{len(X)} training latents of dimension {X.shape[1]}")
show("model's clusters", evals["val_cluster"], evals["test_cluster"])
probe = LogisticRegression(max_iter=2000).fit(X, y)
print(f"linear probe (labels): val {(probe.predict(V) == yv).mean():.3f} test {(probe.predict(T) == yt).mean():.3f}")
n_pc = min(48, X.shape[1])
pca = PCA(n_pc, random_state=0).fit(X)
Z, ZV, ZT = (pca.transform(a) for a in (X, V, T))
scale = np.sqrt(np.maximum(pca.explained_variance_, 1e-12))
for d in (5, 16, 32):
    for white in (False, True):
        f = (lambda a, d=d: a[:, :d] / scale[:d]) if white else (lambda a, d=d: a[:, :d])
        runs = []
        for seed in range(3):
            km = KMeans(3, n_init=10, random_state=seed).fit(f(Z))
            score = f"{acc(yv, km.predict(f(ZV))):.3f}/{acc(yt, km.predict(f(ZT))):.3f}"
            runs.append(f"{score} (inertia {km.inertia_:.0f})")
        print(f"k-means, {d} PCs{' whitened' if white else ''}, seeds 0-2 (val/test): " + ", ".join(runs), flush=True)
    runs = []
    for seed in range(3):
        gm = GaussianMixture(3, covariance_type="full", random_state=seed).fit(Z[:, :d])
        runs.append(f"{acc(yv, gm.predict(ZV[:, :d])):.3f}/{acc(yt, gm.predict(ZT[:, :d])):.3f}")
    print(f"Gaussian mixture (full), {d} PCs, seeds 0-2 (val/test): " + ", ".join(runs), flush=True)
sample = np.random.default_rng(0).choice(len(Z), 6000, replace=False)
for nn in (15, 50):
    sc = SpectralClustering(3, affinity="nearest_neighbors", n_neighbors=nn, random_state=0,
                            assign_labels="cluster_qr").fit(Z[sample, :32])
    knn = KNeighborsClassifier(15).fit(Z[sample, :32], sc.labels_)
    show(f"spectral clustering, 32 PCs, {nn} neighbours", knn.predict(ZV[:, :32]), knn.predict(ZT[:, :32]))

std = Z[:, :32].std(0)
S, SV, ST = (jnp.asarray(a[:, :32] / std, jnp.float32) for a in (Z, ZV, ZT))


def rim_loss(p, x, lam, wd):
    logits = x @ p["W"] + p["b"]
    q = jax.nn.softmax(logits)
    mean = q.mean(0)
    conditional = -(q * jax.nn.log_softmax(logits)).sum(1).mean()  # small: confident assignments
    marginal = -(mean * jnp.log(mean + 1e-9)).sum()  # large: balanced clusters
    return conditional - lam * marginal + wd * (p["W"] ** 2).sum()


grad = jax.jit(jax.value_and_grad(rim_loss))
for lam, wd in ((1.0, 1e-3), (1.0, 1e-2), (2.0, 1e-3), (2.0, 1e-2)):
    runs = []
    for seed in range(3):
        p = {"W": 0.1 * jax.random.normal(jax.random.PRNGKey(seed), (32, 3)), "b": jnp.zeros(3)}
        m1 = jax.tree_util.tree_map(jnp.zeros_like, p)
        m2 = jax.tree_util.tree_map(jnp.zeros_like, p)
        for it in range(1, 1501):  # Adam, lr 1e-2
            _, g = grad(p, S, lam, wd)
            m1 = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m1, g)
            m2 = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, m2, g)
            p = jax.tree_util.tree_map(lambda w, a, b, it=it: w - 1e-2 * (a / (1 - 0.9**it))
                                       / (jnp.sqrt(b / (1 - 0.999**it)) + 1e-8), p, m1, m2)
        pv, pt = (np.asarray((a @ p["W"] + p["b"]).argmax(1)) for a in (SV, ST))
        runs.append(f"{acc(yv, pv):.3f}/{acc(yt, pt):.3f}")
    print(f"information-maximisation head, 32 standardised PCs, lambda {lam}, weight decay {wd}, seeds 0-2 "
          f"(val/test): " + ", ".join(runs), flush=True)
