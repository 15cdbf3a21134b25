"""Rank 0's MLflow run: params once, metrics per epoch, plots and the model at the end.

The loop (:mod:`ucluster.train.loop`) calls it on rank 0 only; nothing here knows about engines. The run says
where it came from (the job or notebook that launched the training, not Horovod's launcher script that runs
this code, and the git commit) and which dataset it read (``mlflow.log_input``: path, digest, split counts);
it ends with the model logged as an MLflow pyfunc model and registered (:mod:`ucluster.inference.pyfunc`).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from ucluster.config import Config, config_from_dict
from ucluster.data import schema as S
from ucluster.redact import redact_config_dict
from ucluster.train import metrics as M
from ucluster.train.fallback import MetricsFallback


def _finite(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float) and np.isfinite(v)}


class MLflowTracker:
    def __init__(self, cfg: Config, meta: S.DatasetMeta, params: dict, run_id: str | None):
        import mlflow

        from ucluster.tracking import setup_mlflow

        self.cfg = cfg
        self.meta = meta
        # A new run may be a child (a tuning trial); a resumed run keeps the tags it was created with.
        tags = {"mlflow.parentRunId": cfg.run.parent_run_id} if cfg.run.parent_run_id and run_id is None else None
        run, down = None, None
        try:
            setup_mlflow(cfg.run.output_dir, cfg.run.experiment, cfg.run.tracking_uri)  # sets the URI first
            run = mlflow.start_run(run_id=run_id, run_name=cfg.run.run_name or None, tags=tags)
        except Exception as exc:
            if run_id is None:  # a new run needs the store (the driver checked it before any worker started)
                raise
            down = exc
        self.run_id, self.offline = (run.info.run_id if run else run_id), run is None
        self.fallback = MetricsFallback(cfg.run.output_dir, self.run_id, mlflow.get_tracking_uri())
        if run is None:
            # Relaunched after a lost worker while the store is down: the run and its params exist, so training
            # goes on and its metrics wait in the fallback, as they do for an outage mid-run; the run is reopened
            # at the first call that reaches the store again.
            self.fallback.mark_down(down)
            return
        if not run.data.params:  # a new run (the driver may have created it): params once; never credentials
            flat = {k: (",".join(map(str, v)) if isinstance(v, list) else v)
                    for k, v in config_from_dict(redact_config_dict(cfg.to_dict())).flat().items()}
            mlflow.set_tags(source_tags(cfg))  # here, not at start_run: the driver usually created the run
            log_dataset(cfg.data.path, meta)
            flat.update(params)
            flat.update({"data.n_features": meta.n_features, "data.feature_names": ",".join(meta.feature_names),
                         "data.dataset_particles": meta.n_particles})
            mlflow.log_params(flat)
            mlflow.set_tags({"ucluster.phase_schedule": f"pretrain {cfg.train.pretrain_epochs} / "
                             f"total {cfg.train.epochs} epochs", "ucluster.dataset": str(cfg.data.path)})
            mlflow.log_text(cfg.to_yaml(redacted=True), "config.yaml")

    def log_metrics(self, metrics: dict, step: int) -> None:
        """Metrics of one step; buffered locally while the store is unreachable (training goes on)."""
        import mlflow

        def send(values: dict, at: int) -> None:
            self._reopen()
            mlflow.log_metrics(values, step=at)

        self.fallback.log(_finite(metrics), step, send)

    def _reopen(self) -> None:
        """Make the run active again after a start while the store was down (raises while it still is)."""
        import mlflow

        if self.offline:
            mlflow.start_run(run_id=self.run_id)
            self.offline = False

    def log_epoch(self, epoch: int, metrics: dict) -> None:
        self.log_metrics(metrics, epoch)
        parts = [f"epoch {epoch + 1}/{self.cfg.train.epochs}", f"loss {metrics['loss']:.4f}",
                 f"class acc {metrics['test_class_acc']:.3f}"]
        if "test_cluster_acc" in metrics:
            parts += [f"cluster acc {metrics['test_cluster_acc']:.3f}", f"NMI {metrics['test_nmi']:.3f}",
                      f"ARI {metrics['test_ari']:.3f}"]
        parts.append(f"{metrics['jets_per_s']:.0f} jets/s")
        if self.cfg.run.progress:
            print(" | ".join(parts), flush=True)

    def finish(self, model_path: Path, centroids: np.ndarray, final: dict, sample: dict) -> dict:
        """Plots of the test sample, the model and the final figures; ends the run."""
        import mlflow

        from ucluster.plots import confusion_matrix_plot, per_cluster_histograms

        self._reopen()  # still down: the caller keeps the end of the run in the fallback
        names = list(self.cfg.data.classes)
        k = self.cfg.model.n_clusters
        table = M.contingency(sample["cluster"], sample["label"], k, len(names))
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            np.save(tmp / "centroids.npy", centroids)
            confusion_matrix_plot(table, names, tmp / "confusion_matrix.png")
            per_cluster_histograms(sample["mass"], sample["cluster"], sample["label"], names, k,
                                   tmp / "jet_mass_per_cluster.png", bins=np.linspace(0, 300, 61))
            per_cluster_histograms(sample["pt"], sample["cluster"], sample["label"], names, k,
                                   tmp / "jet_pt_per_cluster.png", xlabel="jet pT [GeV]")
            for f in tmp.iterdir():
                mlflow.log_artifact(str(f))
        registered = self.log_model(model_path, final)
        summary = {f"final_{key}": v for key, v in final.items() if not isinstance(v, dict)}
        for kind in ("purity", "efficiency"):
            summary.update({f"final_{kind}_{n}": v for n, v in final[kind].items()})
        mlflow.log_metrics(_finite(summary))
        mlflow.end_run()
        return {"run_id": self.run_id, "registered_model": registered}

    def log_model(self, model_path: Path, final: dict) -> str | None:
        """The model as an MLflow pyfunc model (``runs:/<id>/model``), registered as ``run.registered_model``."""
        import mlflow

        from ucluster.inference.model_source import _build, keras_info
        from ucluster.inference.pyfunc import example_rows, log_pyfunc

        card = _build(model_path, keras_info(model_path), f"MLflow run {self.run_id}", self.cfg,
                      list(self.meta.feature_names), run_id=self.run_id, uri=mlflow.get_tracking_uri(),
                      trained_alpha=final.get("alpha")).card()
        _, registered, note = log_pyfunc(model_path, card, example=example_rows(self.cfg.data.path),
                                         registered_model=self.cfg.run.registered_model)
        if registered:
            mlflow.set_tag("ucluster.registered_model", registered)
            if self.cfg.run.progress:
                print(f"model registered as models:/{registered}", flush=True)
        elif note:
            print(f"warning: {note}", file=sys.stderr, flush=True)
        return registered

    def fail(self) -> None:
        import mlflow

        try:
            if mlflow.active_run():
                mlflow.end_run(status="FAILED")
        except Exception:  # noqa: BLE001 - the store is down: the driver closes the run when it can
            pass


def source_tags(cfg: Config) -> dict[str, str]:
    """MLflow's source tags from ``run.source`` / ``run.source_commit`` (filled in by the driver).

    A Databricks notebook is a workspace path (``/Users/...``, no file here); anything else, e.g. a console
    script such as ``.venv/bin/pytest`` that has no ``.py`` suffix, is a JOB.
    """
    tags = {}
    if cfg.run.source:
        source = cfg.run.source
        notebook = source.startswith("/") and not source.endswith(".py") and not Path(source).exists()
        tags.update({"mlflow.source.name": cfg.run.source, "mlflow.source.type": "NOTEBOOK" if notebook else "JOB"})
        if notebook:
            tags["mlflow.databricks.notebookPath"] = cfg.run.source
    if cfg.run.source_commit:
        tags["mlflow.source.git.commit"] = cfg.run.source_commit
    return tags


def dataset_digest(root: str | Path) -> tuple[str, dict[str, int]]:
    """The dataset's fingerprint (the one checkpoints carry) and its jets per split (from the file footers)."""
    import pyarrow.parquet as pq

    from ucluster.train.checkpoint import dataset_fingerprint

    counts = {split: sum(pq.ParquetFile(f).metadata.num_rows for f in S.split_files(root, split))
              for split in S.SPLITS}
    return dataset_fingerprint(root)[:16], {split: n for split, n in counts.items() if n}


def log_dataset(root: str | Path, meta: S.DatasetMeta) -> None:
    """The Parquet dataset as the run's input, so that runs can be compared and filtered by data."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.types.schema import ColSpec, Schema

    digest, counts = dataset_digest(root)
    source = resolve_dataset_source(str(Path(root).absolute()) if "://" not in str(root) else str(root))
    schema = Schema([ColSpec("binary", S.FEATURES), ColSpec("integer", S.N_PARTICLES), ColSpec("integer", S.LABEL)])
    dataset = MetaDataset(source, name=Path(str(root).rstrip("/")).name, digest=digest, schema=schema)
    tags = {f"{split}_jets": str(n) for split, n in counts.items()}
    tags.update({"features": ",".join(meta.feature_names), "particles_per_jet": str(meta.n_particles),
                 "classes": ",".join(meta.class_names)})
    mlflow.log_input(dataset, context="training", tags=tags)
