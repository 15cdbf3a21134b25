"""Round 15: where the supervised accuracy sits in (m, m_SD), and a label-free mass that k-means can use.

On round 8's sample (the train split fits, val selects, test reports; labels only to score):
1. the (m, m_SD) plane per class (m_msd.png) and the 1-D spectra (m_1d.png);
2. the fraction of jets whose soft drop removed a prong (m_SD < 0.5 m), per class;
3. k-means (3 clusters) on log m, log m_SD, and on the log of the hybrid mass (m_SD where m_SD >= f m, else m)
   for f = 0.3 ... 0.8, with the labelled best two cuts on the hybrid mass beside it (jobs.baselines' search).

    D=docs/quality_round15; python $D/hybrid_mass.py /tmp/jets.parquet $D > $D/hybrid_mass.log
"""
import sys

import matplotlib
import numpy as np
import pyarrow.parquet as pq
from sklearn.cluster import KMeans

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ucluster.baselines import best_cuts  # noqa: E402
from ucluster.config import load_config  # noqa: E402
from ucluster.data.loader import hybrid_mass  # noqa: E402
from ucluster.train import metrics as M  # noqa: E402

NAMES = {2: "W", 3: "Z", 4: "t"}


def load(root, split):
    t = pq.read_table(f"{root}/split={split}", columns=["jet_mass", "jet_mass_sd", "label"]).to_pandas()
    t = t[(t.jet_mass >= 10) & (t.jet_mass <= 250)]  # the default selection window
    return t.jet_mass.to_numpy(np.float64), t.jet_mass_sd.to_numpy(np.float64), t.label.to_numpy()


def accuracy(label, cluster):
    """Clustering accuracy (best one-to-one matching), as the project scores it."""
    return M.cluster_accuracy(M.contingency(cluster, np.searchsorted(list(NAMES), label), 3, 3))


def main(root, out):
    (m, sd, y), (mv, sdv, yv), (mt, sdt, yt) = (load(root, s) for s in ("train", "val", "test"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, c in zip(axes, NAMES, strict=True):
        ax.hist2d(m[y == c], sd[y == c], bins=[np.arange(10, 251, 3), np.arange(0, 251, 3)],
                  norm=matplotlib.colors.LogNorm())
        ax.set(title=f"{NAMES[c]} jets (train)", xlabel="m [GeV]", ylabel="m_SD [GeV]")
    fig.tight_layout()
    fig.savefig(f"{out}/m_msd.png", dpi=60)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for c in NAMES:
        axes[0].hist(m[y == c], bins=np.arange(10, 251, 2), histtype="step", label=NAMES[c])
        axes[1].hist(sd[y == c], bins=np.arange(0, 251, 2), histtype="step", label=NAMES[c])
    axes[0].set(xlabel="m [GeV]", ylabel="jets / 2 GeV")
    axes[1].set(xlabel="m_SD [GeV]")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(f"{out}/m_1d.png", dpi=60)

    print(f"jets train/val/test {len(y)}/{len(yv)}/{len(yt)}")
    for c in NAMES:
        print(f"{NAMES[c]}: median m {np.median(m[y == c]):.1f}, median m_SD {np.median(sd[y == c]):.1f} GeV; "
              f"m_SD < 0.5 m (a prong groomed away) for {np.mean(sd[y == c] < 0.5 * m[y == c]):.3f}")

    def kmeans(name, f):
        km = KMeans(3, n_init=10, random_state=0).fit(f(m, sd)[:, None])
        centres = np.sort(np.exp(km.cluster_centers_.ravel()))
        print(f"k-means on {name}: val {accuracy(yv, km.predict(f(mv, sdv)[:, None])):.3f} "
              f"test {accuracy(yt, km.predict(f(mt, sdt)[:, None])):.3f} (centres {np.round(centres, 1)} GeV)")

    log = lambda x: np.log(np.maximum(x, 1.0))  # noqa: E731
    kmeans("log m", lambda a, b: log(a))
    kmeans("log m_SD", lambda a, b: log(b))
    cfg = load_config(None, {"data.path": root})  # the default selection and classes, for best_cuts
    labels = {split: np.searchsorted(list(NAMES), lab) for split, lab in (("train", y), ("val", yv))}
    for f in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        kmeans(f"log hybrid mass, f = {f}", lambda a, b, f=f: log(hybrid_mass(a, b, f)))
        # the labelled cuts of jobs.baselines (1 GeV grid over 0-250 GeV, chosen on train), scored on val here
        cuts = best_cuts(cfg, {"label": labels["train"], "h": hybrid_mass(m, sd, f)},
                         {"label": labels["val"], "h": hybrid_mass(mv, sdv, f)}, "h", 0.0, 250.0)["cuts_gev"]
        print(f"    labelled best cuts on the hybrid mass: {cuts} GeV, val "
              f"{accuracy(yv, np.digitize(hybrid_mass(mv, sdv, f), cuts)):.3f} test "
              f"{accuracy(yt, np.digitize(hybrid_mass(mt, sdt, f), cuts)):.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
