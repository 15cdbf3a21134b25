"""Anomaly-mode report of an event clustering: where does a rare signal concentrate, and is m_jj sculpted?

Per cluster: events, signal and background counts, signal fraction and S/sqrt(B); the most enriched cluster
(highest signal fraction among clusters with background) against the input signal fraction; the m_jj spectrum
of every cluster; and the sculpting of the background m_jj in the enriched cluster, measured as the
Jensen-Shannon divergence (base 2, 0 = same shape, 1 = disjoint) between its normalised background m_jj
histogram and that of all background events. Labels are only read here, never in training.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np


@dataclass
class AnomalyReport:
    clusters: list[dict]  # one row per cluster: cluster, events, signal, background, signal_fraction, s_over_sqrt_b
    input_signal_fraction: float
    enriched_cluster: int
    enriched_signal_fraction: float
    sculpting_js: float
    mjj_edges: list[float] = field(default_factory=list)
    summary: str = ""


def cluster_table(clusters: np.ndarray, labels: np.ndarray, n_clusters: int) -> list[dict]:
    """Per-cluster counts (labels: 1 signal, 0 background); S/sqrt(B) is inf where B = 0 and S > 0."""
    rows = []
    for k in range(n_clusters):
        sel = clusters == k
        s, b = int((labels[sel] == 1).sum()), int((labels[sel] == 0).sum())
        n = s + b
        rows.append({"cluster": k, "events": n, "signal": s, "background": b,
                     "signal_fraction": s / n if n else float("nan"),
                     "s_over_sqrt_b": s / math.sqrt(b) if b else (float("inf") if s else float("nan"))})
    return rows


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2) of two histograms, each normalised to unit sum."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.sum() == 0 or q.sum() == 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return 0.5 * kl(p) + 0.5 * kl(q)


def anomaly_report(clusters: np.ndarray, labels: np.ndarray, mjj: np.ndarray, n_clusters: int,
                   mjj_edges: np.ndarray | None = None) -> AnomalyReport:
    """The report's numbers from per-event cluster, label and m_jj arrays."""
    clusters, labels, mjj = np.asarray(clusters), np.asarray(labels), np.asarray(mjj, float)
    if not len(clusters) == len(labels) == len(mjj) or not len(clusters):
        raise ValueError("clusters, labels and mjj must be non-empty and of equal length")
    table = cluster_table(clusters, labels, n_clusters)
    candidates = [r for r in table if r["background"] > 0 and r["events"] > 0] or [r for r in table if r["events"]]
    best = max(candidates, key=lambda r: (r["signal_fraction"], r["signal"]))
    if mjj_edges is None:
        mjj_edges = np.linspace(np.percentile(mjj, 0.5), np.percentile(mjj, 99.5), 31)
    bkg = labels == 0
    h_all = np.histogram(mjj[bkg], mjj_edges)[0]
    h_k = np.histogram(mjj[bkg & (clusters == best["cluster"])], mjj_edges)[0]
    report = AnomalyReport(table, float((labels == 1).mean()), int(best["cluster"]), float(best["signal_fraction"]),
                           js_divergence(h_k, h_all), [float(e) for e in mjj_edges])
    lines = [f"{'cluster':>7} {'events':>8} {'signal':>7} {'bkg':>8} {'S/(S+B)':>8} {'S/sqrt(B)':>9}"]
    for r in table:
        lines.append(f"{r['cluster']:>7} {r['events']:>8} {r['signal']:>7} {r['background']:>8} "
                     f"{r['signal_fraction']:>8.4f} {r['s_over_sqrt_b']:>9.3f}")
    lines.append(f"input signal fraction {report.input_signal_fraction:.4f}; most enriched cluster "
                 f"{report.enriched_cluster}: {report.enriched_signal_fraction:.4f} "
                 f"(x{report.enriched_signal_fraction / max(report.input_signal_fraction, 1e-12):.1f}); background "
                 f"m_jj sculpting there (JS divergence to all background) {report.sculpting_js:.4f}")
    report.summary = "\n".join(lines) + "\n"
    return report


def plot_mjj(report: AnomalyReport, clusters: np.ndarray, labels: np.ndarray, mjj: np.ndarray, path: str) -> str:
    """m_jj of every cluster (all events, normalised) and the enriched cluster's background against all."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.asarray(report.mjj_edges)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for r in report.clusters:
        sel = clusters == r["cluster"]
        if sel.any():
            a.hist(mjj[sel], edges, histtype="step", density=True,
                   label=f"cluster {r['cluster']} (S/(S+B)={r['signal_fraction']:.3f})")
    a.set(xlabel="m_jj [GeV]", ylabel="normalised", title="m_jj per cluster")
    a.legend(fontsize=7)
    bkg = labels == 0
    b.hist(mjj[bkg], edges, histtype="step", density=True, label="all background")
    b.hist(mjj[bkg & (clusters == report.enriched_cluster)], edges, histtype="step", density=True,
           label=f"background in cluster {report.enriched_cluster}")
    b.set(xlabel="m_jj [GeV]", title=f"sculpting: JS = {report.sculpting_js:.4f}")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def kmeans_baseline(m_j1: np.ndarray, m_j2: np.ndarray, tau21_j1: np.ndarray, tau21_j2: np.ndarray,
                    n_clusters: int, seed: int = 0) -> np.ndarray:
    """The simple baseline: k-means on the standardised (m_j1, m_j2, tau21_j1, tau21_j2) of each event."""
    return KMeansBaseline.fit(m_j1, m_j2, tau21_j1, tau21_j2, n_clusters, seed).labels


@dataclass
class KMeansBaseline:
    """The baseline fitted on one set of events (its standardisation and centroids), so that it can assign
    others: fit on train, pick the enriched cluster there, score that cluster on test (no in-sample choice)."""

    mean: np.ndarray
    std: np.ndarray
    centroids: np.ndarray
    labels: np.ndarray  # clusters of the events it was fitted on

    @staticmethod
    def _observables(m_j1, m_j2, tau21_j1, tau21_j2) -> np.ndarray:
        return np.stack([m_j1, m_j2, tau21_j1, tau21_j2], axis=1).astype(np.float64)

    @classmethod
    def fit(cls, m_j1, m_j2, tau21_j1, tau21_j2, n_clusters: int, seed: int = 0) -> KMeansBaseline:
        from sklearn.cluster import KMeans

        x = cls._observables(m_j1, m_j2, tau21_j1, tau21_j2)
        mean, std = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-12)
        km = KMeans(n_clusters, n_init=10, random_state=seed).fit((x - mean) / std)
        return cls(mean, std, km.cluster_centers_, km.labels_)

    def assign(self, m_j1, m_j2, tau21_j1, tau21_j2) -> np.ndarray:
        """Nearest centroid of each event, in the standardisation of the fitted events."""
        x = (self._observables(m_j1, m_j2, tau21_j1, tau21_j2) - self.mean) / self.std
        return ((x[:, None, :] - self.centroids[None]) ** 2).sum(-1).argmin(axis=1)


def baseline_reports(m_j1: np.ndarray, m_j2: np.ndarray, tau21_j1: np.ndarray, tau21_j2: np.ndarray,
                     labels: np.ndarray, mjj: np.ndarray, cluster_counts: list[int], seed: int = 0,
                     mjj_edges: list[float] | None = None) -> dict[int, AnomalyReport]:
    """The k-means baseline's report at each k, fitted on the events it reports on (k-means has no training
    split to keep apart: it sees no labels). Its enrichment grows fast with k (docs/anomaly.md: x14 / x25 / x42 at
    16 / 32 / 64 clusters on 1 % injected), so the report shows the k a physicist asks for, not only the model's."""
    edges = None if mjj_edges is None else np.asarray(mjj_edges)
    out = {}
    for k in cluster_counts:
        if not 1 <= k <= len(labels):
            raise ValueError(f"baseline clusters must be between 1 and the {len(labels)} events, got {k}")
        out[k] = anomaly_report(kmeans_baseline(m_j1, m_j2, tau21_j1, tau21_j2, k, seed=seed), labels, mjj, k, edges)
    return out


def baseline_summary(baselines: dict[int, AnomalyReport]) -> str:
    """One line per k: the baseline's most enriched cluster against the input fraction."""
    lines = []
    for k, b in sorted(baselines.items()):
        gain = b.enriched_signal_fraction / max(b.input_signal_fraction, 1e-12)
        lines.append(f"k-means baseline on (m_j1, m_j2, tau21_j1, tau21_j2), {k} clusters: most enriched cluster "
                     f"{b.enriched_cluster} ({b.clusters[b.enriched_cluster]['events']} events): "
                     f"{b.enriched_signal_fraction:.4f} (x{gain:.1f}); m_jj sculpting {b.sculpting_js:.4f}\n")
    return "".join(lines)


def write_and_log(report: AnomalyReport, clusters: np.ndarray, labels: np.ndarray, mjj: np.ndarray, out_dir: str,
                  run_id: str | None = None, tracking_uri: str = "", experiment: str = "ucluster",
                  mlflow_on: bool = True, prefix: str = "anomaly",
                  baselines: dict[int, AnomalyReport] | None = None) -> str | None:
    """Write summary.txt, clusters.json and mjj.png under ``out_dir`` and log them and the metrics to MLflow
    (with the k-means baselines' figures beside them, if given)."""
    baselines = baselines or {}
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "summary.txt"), "w") as f:
        f.write(report.summary + baseline_summary(baselines))
    with open(os.path.join(out_dir, "clusters.json"), "w") as f:
        json.dump({"clusters": report.clusters, "input_signal_fraction": report.input_signal_fraction,
                   "enriched_cluster": report.enriched_cluster,
                   "enriched_signal_fraction": report.enriched_signal_fraction,
                   "sculpting_js": report.sculpting_js,
                   "kmeans_baselines": {str(k): {"enriched_cluster": b.enriched_cluster,
                                                 "enriched_signal_fraction": b.enriched_signal_fraction,
                                                 "sculpting_js": b.sculpting_js, "clusters": b.clusters}
                                        for k, b in sorted(baselines.items())}}, f, indent=2)
    plot_mjj(report, clusters, labels, mjj, os.path.join(out_dir, "mjj.png"))
    if not mlflow_on:
        return None
    import mlflow

    from ucluster.config import RunConfig
    from ucluster.inference.model_source import store_uri

    # a training --out directory or a URI, resolved as jobs/evaluate.py resolves it
    client = mlflow.MlflowClient(store_uri(tracking_uri, RunConfig().output_dir))
    own_run = run_id is None
    if run_id is None:
        exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
        run_id = client.create_run(exp_id, run_name="anomaly-report").info.run_id
    metrics = {f"{prefix}_input_signal_fraction": report.input_signal_fraction,
               f"{prefix}_enriched_signal_fraction": report.enriched_signal_fraction,
               f"{prefix}_enriched_cluster": report.enriched_cluster, f"{prefix}_mjj_sculpting_js": report.sculpting_js}
    for r in report.clusters:
        for key in ("events", "signal_fraction", "s_over_sqrt_b"):
            if math.isfinite(r[key]):
                metrics[f"{prefix}_cluster{r['cluster']}_{key}"] = float(r[key])
    for k, b in baselines.items():
        metrics[f"{prefix}_baseline_k{k}_enriched_signal_fraction"] = b.enriched_signal_fraction
        metrics[f"{prefix}_baseline_k{k}_mjj_sculpting_js"] = b.sculpting_js
    for k, v in metrics.items():
        if math.isfinite(v):
            client.log_metric(run_id, k, float(v))
    client.log_artifacts(run_id, out_dir, artifact_path=prefix)
    if own_run:  # a run given by the caller stays as it was
        client.set_terminated(run_id)
    return run_id
