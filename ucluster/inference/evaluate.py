"""The physics report of a cluster assignment: metrics, plots and a summary, logged to MLflow.

The contingency table (cluster x true class) is one Spark ``groupBy`` count, so the metrics (Hungarian
accuracy, NMI, ARI, per-class purity and efficiency, from :mod:`ucluster.train.metrics`) cover every selected
jet whatever the dataset size; only a bounded random sample is collected for the histograms and the latent
projection. The jet selection (classes, mass and pT window) defaults to the training run's.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ucluster.data import schema as S
from ucluster.inference import InferenceError
from ucluster.inference import predict as P
from ucluster.inference.assign import read_assign_meta
from ucluster.train import metrics as M

DEFAULT_EXPERIMENT = "ucluster"
DEFAULT_OUT = "runs/evaluate"


@dataclass
class EvalReport:
    metrics: dict[str, float]
    table: np.ndarray  # clusters x classes, selected jets
    classes: list[str]
    mapping: dict[int, int]  # cluster -> class index (Hungarian)
    summary: str
    files: dict[str, Path] = field(default_factory=dict)  # artifact name -> local file
    run_id: str | None = None
    notes: list[str] = field(default_factory=list)
    selection: str = ""


@dataclass
class Selection:
    split: str  # "all" or one split
    classes: list[str]
    mass_min: float = -np.inf
    mass_max: float = np.inf
    pt_min: float = -np.inf
    pt_max: float = np.inf

    def describe(self) -> str:
        parts = [f"split {self.split}", "classes " + ",".join(self.classes)]
        if np.isfinite(self.mass_min) or np.isfinite(self.mass_max):
            parts.append(f"{self.mass_min:g} < m_jet < {self.mass_max:g} GeV")
        if self.pt_min > 0 or self.pt_max < 1e8:
            parts.append(f"{self.pt_min:g} < pT < {self.pt_max:g} GeV")
        return ", ".join(parts)


def default_selection(meta: dict, split: str = "test", classes: list[str] | None = None,
                      mass_window: tuple[float | None, float | None] = (None, None)) -> Selection:
    """The training run's classes and windows (as recorded with the assignment), with overrides."""
    names = meta["dataset"]["class_names"]
    chosen = list(classes or meta["model"].get("classes") or names)
    unknown = [c for c in chosen if c not in names]
    if unknown:
        raise InferenceError(f"classes {unknown} are not among the dataset's classes {names}")
    trained = meta["model"].get("selection") or {}
    sel = Selection(split=split, classes=chosen, mass_min=trained.get("mass_min", -np.inf),
                    mass_max=trained.get("mass_max", np.inf), pt_min=trained.get("pt_min", -np.inf),
                    pt_max=trained.get("pt_max", np.inf))
    if mass_window[0] is not None:
        sel.mass_min = mass_window[0]
    if mass_window[1] is not None:
        sel.mass_max = mass_window[1]
    if sel.mass_min >= sel.mass_max:
        raise InferenceError(f"empty mass window {sel.mass_min:g}-{sel.mass_max:g} GeV")
    return sel


def _selected(df, meta: dict, sel: Selection):
    from pyspark.sql import functions as F

    if S.LABEL not in df.columns:
        raise InferenceError("the assignment output has no label column: nothing to compare the clusters with")
    if sel.split != "all":
        if "split" not in df.columns:
            raise InferenceError(f"the assignment output is not partitioned by split; use --split all "
                                 f"(asked for '{sel.split}')")
        if sel.split not in meta.get("counts", {}):
            raise InferenceError(f"no '{sel.split}' jets in the assignment output (splits: {sorted(meta['counts'])})")
        df = df.where(F.col("split") == sel.split)
    ids = [meta["dataset"]["class_names"].index(c) for c in sel.classes]
    cond = F.col(S.LABEL).isin(ids)
    for column, lo, hi in ((S.JET_MASS, sel.mass_min, sel.mass_max), (S.JET_PT, sel.pt_min, sel.pt_max)):
        if np.isfinite(lo):
            cond &= F.col(column) > float(lo)
        if np.isfinite(hi):
            cond &= F.col(column) < float(hi)
    return df.where(cond), ids


def contingency_table(df, label_ids: list[int], n_clusters: int) -> np.ndarray:
    """Cluster x class counts from one distributed ``groupBy``; only K x C numbers reach the driver."""
    table = np.zeros((n_clusters, len(label_ids)))
    index = {label: i for i, label in enumerate(label_ids)}
    for row in df.groupBy(P.CLUSTER, S.LABEL).count().collect():
        table[int(row[P.CLUSTER]), index[int(row[S.LABEL])]] += row["count"]
    return table


def report_metrics(table: np.ndarray, classes: list[str]) -> dict[str, float]:
    purity, efficiency = M.purity_efficiency(table)
    out = {**M.clustering_report(table), "jets": float(table.sum())}
    out.update({f"purity_{c}": float(p) for c, p in zip(classes, purity, strict=True)})
    out.update({f"efficiency_{c}": float(e) for c, e in zip(classes, efficiency, strict=True)})
    sizes = table.sum(axis=1) / max(table.sum(), 1)
    out.update({f"cluster_fraction_{k}": float(f) for k, f in enumerate(sizes)})
    return out


def _sample(df, total: int, size: int, seed: int, with_latent: bool):
    """At most ``size`` selected jets, drawn uniformly (Bernoulli sample, then a limit)."""
    cols = [P.CLUSTER, S.LABEL, S.JET_MASS, S.JET_PT] + ([P.LATENT] if with_latent else [])
    fraction = min(1.0, 1.3 * size / total)
    part = df.select(*cols)
    if fraction < 1.0:
        part = part.sample(withReplacement=False, fraction=fraction, seed=seed)
    return part.limit(size).toArrow()


def _list_values(column, width: int) -> np.ndarray:
    return column.combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, width).astype(np.float32)


def sample_latents(meta: dict, sel: Selection, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Latent vectors, clusters and classes of about ``size`` selected jets, computed with the model on the driver.

    Reads whole row groups of the dataset in a random (seeded) order until enough jets pass the selection, so the
    cost is bounded by ``size`` and not by the dataset; the cluster is the model's argmin, identical to the
    assignment's by construction.
    """
    import pyarrow.parquet as pq

    from ucluster.data.loader import model_inputs
    from ucluster.inference.model_source import resolve_model

    data = Path(meta["data"])
    if not data.exists():
        raise InferenceError(f"the dataset {data} is gone")
    files = sorted(f for f in data.rglob("*.parquet") if sel.split == "all" or f"split={sel.split}" in f.parts)
    groups = [(f, i) for f in files for i in range(pq.ParquetFile(f).metadata.num_row_groups)]
    model = resolve_model(meta["model_spec"], meta["model"].get("tracking_uri") or "")
    predictor = P.load_predictor(model.model_path)
    ds = S.DatasetMeta(feature_names=meta["dataset"]["feature_names"], n_particles=meta["dataset"]["n_particles"],
                       class_names=[], split_fractions={})
    ids = [meta["dataset"]["class_names"].index(c) for c in sel.classes]
    parts: dict[str, list[np.ndarray]] = {"latent": [], "cluster": [], "label": []}
    held = 0
    for g in np.random.default_rng(seed).permutation(len(groups)):
        path, index = groups[g]
        t = pq.ParquetFile(path).read_row_group(index, columns=[S.FEATURES, S.N_PARTICLES, S.LABEL, S.JET_MASS,
                                                                S.JET_PT])
        label, mass, pt = (t.column(c).to_numpy() for c in (S.LABEL, S.JET_MASS, S.JET_PT))
        rows = np.flatnonzero(np.isin(label, ids) & (mass > sel.mass_min) & (mass < sel.mass_max)
                              & (pt > sel.pt_min) & (pt < sel.pt_max))[: size - held]
        if rows.size == 0:
            continue
        feats, mask = model_inputs(t.column(S.FEATURES), t.column(S.N_PARTICLES).to_numpy(), ds,
                                   model.max_particles, rows)
        out = predictor(feats, mask)
        parts["latent"].append(out["latent"])
        parts["cluster"].append(out["distances"].argmin(axis=1))
        parts["label"].append(np.array([ids.index(v) for v in label[rows]], dtype=np.int64))
        held += rows.size
        if held >= size:
            break
    if held < 2:
        raise InferenceError(f"fewer than 2 selected jets found in {data}")
    return {k: np.concatenate(v) for k, v in parts.items()}


def latent_projection_plot(latent: np.ndarray, clusters: np.ndarray, labels: np.ndarray, classes: list[str],
                           centroids: np.ndarray | None, path: Path) -> Path:
    """PCA of the latent space to 2-D, coloured by assigned cluster (with the centroids) and by true class."""
    import matplotlib.pyplot as plt

    mean = latent.mean(axis=0)
    _, _, vt = np.linalg.svd(latent - mean, full_matrices=False)
    axes_ = vt[:2].T if vt.shape[0] >= 2 else np.eye(latent.shape[1], 2)
    xy = (latent - mean) @ axes_
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharex=True, sharey=True)
    cmap = plt.get_cmap("tab10")
    for k in np.unique(clusters):
        sel = clusters == k
        axes[0].scatter(xy[sel, 0], xy[sel, 1], s=6, alpha=0.6, color=cmap(int(k) % 10), label=f"cluster {k}")
    if centroids is not None:
        c = (centroids - mean) @ axes_
        axes[0].scatter(c[:, 0], c[:, 1], marker="X", s=140, color="black", label="centroids")
    for i, name in enumerate(classes):
        sel = labels == i
        axes[1].scatter(xy[sel, 0], xy[sel, 1], s=6, alpha=0.6, color=cmap(i % 10), label=name)
    axes[0].set_title("latent space (PCA), by assigned cluster")
    axes[1].set_title("latent space (PCA), by true class")
    for ax in axes:
        ax.set_xlabel("PC 1")
        ax.legend(markerscale=2, fontsize=8)
    axes[0].set_ylabel("PC 2")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summary_text(meta: dict, assignments: str, sel: Selection, table: np.ndarray, metrics: dict,
                 mapping: dict[int, int], total_in_split: int, notes: list[str]) -> str:
    classes = sel.classes
    lines = [f"UCluster evaluation of {assignments}",
             f"model: {meta['model']['description']} (alpha {meta['alpha']:g}, {table.shape[0]} clusters)",
             f"selection: {sel.describe()}",
             f"jets evaluated: {int(table.sum())} of {total_in_split} assigned in the split",
             f"clustering accuracy (Hungarian) {metrics['cluster_acc']:.4f}   NMI {metrics['nmi']:.4f}   "
             f"ARI {metrics['ari']:.4f}",
             "matching cluster -> class: " + ", ".join(f"{k} -> {classes[c]}" for k, c in sorted(mapping.items())),
             "", f"{'class':<10}{'purity':>8}{'efficiency':>12}{'jets':>9}"]
    for i, c in enumerate(classes):
        lines.append(f"{c:<10}{metrics[f'purity_{c}']:>8.3f}{metrics[f'efficiency_{c}']:>12.3f}"
                     f"{int(table[:, i].sum()):>9d}")
    lines += ["", f"{'cluster':<10}{'jets':>8}{'fraction':>10}" + "".join(f"{c:>9}" for c in classes)]
    for k in range(table.shape[0]):
        lines.append(f"{k:<10d}{int(table[k].sum()):>8d}{metrics[f'cluster_fraction_{k}']:>10.3f}"
                     + "".join(f"{int(v):>9d}" for v in table[k]))
    lines += [f"note: {n}" for n in notes]
    return "\n".join(lines) + "\n"


def evaluate(spark, assignments: str | Path, *, split: str = "test", classes: list[str] | None = None,
             mass_window: tuple[float | None, float | None] = (None, None), sample: int = 50000,
             latent_sample: int = 3000, out_dir: str | Path | None = None, seed: int = 0) -> EvalReport:
    """Compute the report of an assignment output; plots and ``summary.txt`` go to ``out_dir`` (or a temp dir).

    The latent projection uses the output's ``latent`` column when it has one, else the latent vectors of about
    ``latent_sample`` selected jets read from the dataset and run through the model on the driver (0: none).
    """
    from ucluster.plots import confusion_matrix_plot, per_cluster_histograms

    meta = read_assign_meta(assignments)
    sel = default_selection(meta, split, classes, mass_window)
    df = spark.read.parquet(str(assignments))
    selected, ids = _selected(df, meta, sel)
    k = int(meta["model"]["n_clusters"])
    table = contingency_table(selected, ids, k)
    total = int(table.sum())
    if total == 0:
        raise InferenceError(f"{assignments}: no jets pass the selection ({sel.describe()})")
    metrics = report_metrics(table, sel.classes)
    mapping = M.hungarian_mapping(table)
    counts = meta.get("counts", {})
    in_split = sum(sum(c.values()) for s_, c in counts.items() if sel.split in ("all", s_))

    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="ucluster-eval-"))
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    notes: list[str] = []
    has_latent = P.LATENT in df.columns
    rows = _sample(selected, total, max(sample, latent_sample if has_latent else 0, 1), seed, has_latent)
    names = sel.classes
    index = {label: i for i, label in enumerate(ids)}
    clusters = rows.column(P.CLUSTER).to_numpy()
    labels = np.array([index[int(v)] for v in rows.column(S.LABEL).to_numpy()], dtype=np.int64)
    files["confusion_matrix.png"] = confusion_matrix_plot(
        table, names, out / "confusion_matrix.png", title=f"clusters vs truth ({sel.split}, {total} jets)")
    mass, pt = rows.column(S.JET_MASS).to_numpy(), rows.column(S.JET_PT).to_numpy()
    lo = sel.mass_min if np.isfinite(sel.mass_min) else float(np.percentile(mass, 0.5))
    hi = sel.mass_max if np.isfinite(sel.mass_max) else float(np.percentile(mass, 99.5))
    files["jet_mass_per_cluster.png"] = per_cluster_histograms(
        mass, clusters, labels, names, k, out / "jet_mass_per_cluster.png", bins=np.linspace(lo, hi, 49))
    files["jet_pt_per_cluster.png"] = per_cluster_histograms(
        pt, clusters, labels, names, k, out / "jet_pt_per_cluster.png", xlabel="jet pT [GeV]")
    if len(rows) < total:
        notes.append(f"histograms and latent projection from a random sample of {len(rows)} of {total} jets")
    n_lat = min(latent_sample, len(rows)) if has_latent else latent_sample
    projection = None
    if n_lat > 1 and has_latent:
        projection = {"latent": _list_values(rows.column(P.LATENT).slice(0, n_lat), int(meta["model"]["latent_dim"])),
                      "cluster": clusters[:n_lat], "label": labels[:n_lat]}
    elif n_lat > 1:
        try:
            projection = sample_latents(meta, sel, n_lat, seed)
            notes.append(f"latent vectors of {len(projection['label'])} jets recomputed with the model "
                         "(the output has none: assign with --with-latent to use them)")
        except InferenceError as exc:
            notes.append(f"latent projection skipped: {exc}")
    if projection is not None:
        centroids = np.asarray(meta["centroids"], np.float32) if meta.get("centroids") else None
        files["latent_pca.png"] = latent_projection_plot(projection["latent"], projection["cluster"],
                                                         projection["label"], names, centroids,
                                                         out / "latent_pca.png")
    summary = summary_text(meta, str(assignments), sel, table, metrics, mapping, in_split, notes)
    (out / "summary.txt").write_text(summary)
    files["summary.txt"] = out / "summary.txt"
    record = {"selection": sel.describe(), "classes": names, "contingency": table.astype(int).tolist(),
              "mapping": {str(c): names[v] for c, v in mapping.items()}, "metrics": metrics}
    (out / "evaluation.json").write_text(json.dumps(record, indent=2) + "\n")
    files["evaluation.json"] = out / "evaluation.json"
    return EvalReport(metrics, table, names, mapping, summary, files, None, notes, sel.describe())


def log_report(report: EvalReport, meta: dict, split: str, run_id: str | None = None, tracking: str = "",
               experiment: str = DEFAULT_EXPERIMENT, out_dir: str | Path = DEFAULT_OUT,
               assignments: str = "") -> str:
    """Log metrics (``eval_<split>_*``) and artifacts (``evaluation/<split>/``) into the training run ``run_id``
    (its status is left alone) or into a new run; returns the run id.

    The store: ``$MLFLOW_TRACKING_URI`` > ``tracking`` > the store of the model's run > SQLite under ``out_dir``.
    """
    from mlflow.entities import Metric, RunTag
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from ucluster.config import RunConfig
    from ucluster.inference.model_source import check_store, open_experiment, store_uri

    value = tracking or meta["model"].get("tracking_uri") or ""
    tags = {"ucluster.eval.assignments": str(Path(assignments).absolute()) if assignments else "",
            f"ucluster.eval.{split}.selection": report.selection,
            "ucluster.eval.model": meta["model"]["description"]}
    if run_id:
        # an existing run is looked up where bare run ids are (the training store)
        uri = store_uri(value, RunConfig().output_dir)
        check_store(uri)
        client = MlflowClient(tracking_uri=uri)
        try:
            client.get_run(run_id)
        except MlflowException:
            raise InferenceError(f"MLflow run {run_id} not found in {uri}") from None
        new = False
    else:
        client, uri, exp_id = open_experiment(value, out_dir, experiment)
        tags["ucluster.train_run_id"] = meta["model"].get("run_id") or ""
        run_id = client.create_run(exp_id, run_name=f"evaluate-{split}", tags={"ucluster.job": "evaluate"}).info.run_id
        new = True
    now = int(time.time() * 1000)
    metrics = [Metric(f"eval_{split}_{name}", float(v), now, 0) for name, v in report.metrics.items()
               if np.isfinite(v)]
    client.log_batch(run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items() if v])
    staging = Path(tempfile.mkdtemp(prefix="ucluster-eval-log-"))
    try:
        for name, path in report.files.items():
            shutil.copyfile(path, staging / name)
        client.log_artifacts(run_id, str(staging), artifact_path=f"evaluation/{split}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if new:
        client.set_terminated(run_id)
    report.run_id = run_id
    return run_id
