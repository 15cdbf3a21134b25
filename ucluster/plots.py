"""Plots a physicist would rather look at than read: cluster/class confusion and jet mass per cluster."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def confusion_matrix_plot(table: np.ndarray, class_names: list[str], path: str | Path,
                          title: str = "clusters vs truth") -> Path:
    """Row-normalised table of true classes (rows) against clusters (columns), with the counts printed."""
    counts = table.T  # classes x clusters
    frac = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 * counts.shape[1] + 2.5, 1.0 * counts.shape[0] + 1.8))
    im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(counts):
        ax.text(j, i, f"{frac[i, j]:.2f}\n({int(v)})", ha="center", va="center",
                color="white" if frac[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(counts.shape[1]), [f"cluster {k}" for k in range(counts.shape[1])])
    ax.set_yticks(range(counts.shape[0]), class_names)
    ax.set_xlabel("assigned cluster")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="fraction of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def per_cluster_histograms(values: np.ndarray, clusters: np.ndarray, labels: np.ndarray, class_names: list[str],
                           n_clusters: int, path: str | Path, xlabel: str = "jet mass [GeV]",
                           bins: np.ndarray | None = None) -> Path:
    """One panel per cluster: the distribution of ``values`` in the cluster, stacked by true class."""
    bins = np.linspace(np.percentile(values, 0.5), np.percentile(values, 99.5), 41) if bins is None else bins
    fig, axes = plt.subplots(1, n_clusters, figsize=(4 * n_clusters, 3.4), sharey=True, squeeze=False)
    for k, ax in enumerate(axes[0]):
        in_k = clusters == k
        parts = [values[in_k & (labels == c)] for c in range(len(class_names))]
        ax.hist(parts, bins=bins, stacked=True, label=class_names, histtype="stepfilled", alpha=0.75)
        ax.set_title(f"cluster {k} ({int(in_k.sum())} jets)")
        ax.set_xlabel(xlabel)
    axes[0][0].set_ylabel("jets")
    axes[0][-1].legend(title="truth")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
