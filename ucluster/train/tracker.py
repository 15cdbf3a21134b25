"""Rank 0's MLflow run: params once, metrics per epoch, plots and the model at the end.

The loop (:mod:`ucluster.train.loop`) calls it on rank 0 only; nothing here knows about engines.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import yaml

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
        setup_mlflow(cfg.run.output_dir, cfg.run.experiment, cfg.run.tracking_uri)
        # A new run may be a child (a tuning trial); a resumed run keeps the tags it was created with.
        tags = {"mlflow.parentRunId": cfg.run.parent_run_id} if cfg.run.parent_run_id and run_id is None else None
        run = mlflow.start_run(run_id=run_id, run_name=cfg.run.run_name or None, tags=tags)
        self.run_id = run.info.run_id
        self.fallback = MetricsFallback(cfg.run.output_dir, self.run_id, mlflow.get_tracking_uri())
        if not run.data.params:  # a new run (the driver may have created it): params once; never credentials
            flat = {k: (",".join(map(str, v)) if isinstance(v, list) else v)
                    for k, v in config_from_dict(redact_config_dict(cfg.to_dict())).flat().items()}
            flat.update(params)
            flat.update({"data.n_features": meta.n_features, "data.feature_names": ",".join(meta.feature_names),
                         "data.dataset_particles": meta.n_particles})
            mlflow.log_params(flat)
            mlflow.set_tags({"ucluster.phase_schedule": f"pretrain {cfg.train.pretrain_epochs} / "
                             f"total {cfg.train.epochs} epochs", "ucluster.dataset": str(cfg.data.path)})
            mlflow.log_text(yaml.safe_dump(redact_config_dict(cfg.to_dict()), sort_keys=False), "config.yaml")

    def log_metrics(self, metrics: dict, step: int) -> None:
        """Metrics of one step; buffered locally while the store is unreachable (training goes on)."""
        import mlflow

        self.fallback.log(_finite(metrics), step, lambda m, s: mlflow.log_metrics(m, step=s))

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
        mlflow.log_artifact(str(model_path), "model")
        summary = {f"final_{key}": v for key, v in final.items() if not isinstance(v, dict)}
        for kind in ("purity", "efficiency"):
            summary.update({f"final_{kind}_{n}": v for n, v in final[kind].items()})
        mlflow.log_metrics(_finite(summary))
        mlflow.end_run()
        return {"run_id": self.run_id}

    def fail(self) -> None:
        import mlflow

        try:
            if mlflow.active_run():
                mlflow.end_run(status="FAILED")
        except Exception:  # noqa: BLE001 - the store is down: the driver closes the run when it can
            pass
