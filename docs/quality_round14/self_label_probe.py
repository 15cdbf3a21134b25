"""Does self-training on confident cluster labels add information the clustering space lacks?

Jet-level probe on round 8's sample (no network): a label-free clustering of the jet mass gives pseudo-labels;
a classifier on richer jet observables (m, m_SD, tau21, tau32, multiplicity, pT) is trained on the confident
ones and relabels every jet; repeat. Scored on val/test with the Hungarian matching; labels only for scoring.
"""
import sys

import numpy as np
import pyarrow.parquet as pq
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.mixture import GaussianMixture

COLS = ["jet_mass", "jet_mass_sd", "jet_tau21", "jet_tau32", "n_particles", "jet_pt", "label"]


def load(split):
    t = pq.read_table(f"{sys.argv[1]}/split={split}", columns=COLS).to_pandas()
    t = t[(t.jet_mass >= 10) & (t.jet_mass <= 250)]
    return t[COLS[:-1]].to_numpy(np.float64), np.searchsorted(np.unique(t.label), t.label.to_numpy())


def acc(y, c):
    m = np.zeros((3, 3))
    np.add.at(m, (c, y), 1)
    r, k = linear_sum_assignment(-m)
    return m[r, k].sum() / len(y)


(xtr, ytr), (xva, yva), (xte, yte) = load("train"), load("val"), load("test")
print(f"jets train/val/test {len(ytr)}/{len(yva)}/{len(yte)}")
sup = HistGradientBoostingClassifier(max_iter=200, random_state=0).fit(xtr, ytr)
print(f"trees on the labels: val {acc(yva, sup.predict(xva)):.3f} test {acc(yte, sup.predict(xte)):.3f}")

starts = {
    "k-means on m": lambda: KMeans(3, n_init=10, random_state=0).fit(xtr[:, :1]),
    "GMM on (m, m_SD)": lambda: GaussianMixture(3, n_init=5, random_state=0).fit(xtr[:, :2]),
}
for name, fit in starts.items():
    for keep in (1.0, 0.5, 0.25):
        start = fit()
        cols = 1 if "k-means" in name else 2
        if hasattr(start, "predict_proba"):
            p = start.predict_proba(xtr[:, :cols])
        else:
            d = start.transform(xtr[:, :cols])
            p = np.exp(-(d - d.min(1, keepdims=True)) ** 2 / (2 * np.median(d.min(1)) ** 2 + 1e-9))
            p /= p.sum(1, keepdims=True)
        lab = p.argmax(1)
        line = [f"{name}, keep {keep:.2f}: start val {acc(yva, start.predict(xva[:, :cols])):.3f}"]
        for it in range(4):
            conf = p.max(1)
            sel = np.zeros(len(lab), bool)
            for c in range(3):  # the most confident share of each cluster, so no cluster is dropped
                idx = np.flatnonzero(lab == c)
                if len(idx):
                    sel[idx[conf[idx] >= np.quantile(conf[idx], 1 - keep)]] = True
            clf = HistGradientBoostingClassifier(max_iter=200, random_state=it).fit(xtr[sel], lab[sel])
            p = clf.predict_proba(xtr)
            lab = p.argmax(1)
            line.append(f"round {it + 1} val {acc(yva, clf.predict(xva)):.3f} test {acc(yte, clf.predict(xte)):.3f}")
        print("; ".join(line), flush=True)
