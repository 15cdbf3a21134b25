"""The Databricks pipeline notebook runs top to bottom on a local Spark (no dbutils), with tiny settings."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pyarrow.dataset as pads
from mlflow.tracking import MlflowClient

from ucluster.tracking import tracking_uri

NOTEBOOK = Path(__file__).resolve().parents[2] / "jobs" / "notebooks" / "ucluster_pipeline.py"
TINY = {"data.max_particles": 30, "data.shuffle_buffer": 256, "model.k": 6, "model.gap1_channels": 8,
        "model.gap2_channels": 8, "model.gap2_heads": 2, "model.point_channels": "16,16", "model.latent_dim": 16,
        "model.head_units": "16", "model.dropout": 0.0, "model.mass_bins": 8, "train.batch_size": 32,
        "train.pretrain_epochs": 1, "train.epochs": 2, "train.kmeans_sample": 300, "run.progress": False}


class _Widgets:
    def __init__(self, values: dict[str, str]):
        self.values, self.defaults = values, {}

    def text(self, name: str, default: str, label: str) -> None:
        self.defaults[name] = default

    def get(self, name: str) -> str:
        return self.values.get(name, self.defaults[name])


def test_notebook_format_and_widgets_on_databricks():
    """Source format, and on Databricks (dbutils present) every parameter comes from a widget."""
    source = NOTEBOOK.read_text()
    assert source.startswith("# Databricks notebook source\n")
    cells = source.split("\n# COMMAND ----------\n")
    assert len(cells) >= 8
    fake = type("DBUtils", (), {"widgets": _Widgets({"workers": "2", "overrides": '{"train.epochs": 7}'})})()
    scope: dict = {"dbutils": fake, "__file__": str(NOTEBOOK)}
    for cell in cells[:3]:  # set-up and parameters only
        exec(compile(cell, str(NOTEBOOK), "exec"), scope)
    assert set(fake.widgets.defaults) >= {"input", "workdir", "workers", "config", "overrides", "jets_per_kind"}
    assert scope["WORKERS"] == 2 and scope["OVERRIDES"] == {"train.epochs": 7}
    assert scope["WORKDIR"] == Path("runs/notebook")


def test_notebook_runs_locally_convert_train_assign_evaluate(spark, pythia_h5_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    work = tmp_path / "nb"
    for name, value in {"input": str(pythia_h5_dir), "workdir": str(work), "workers": "-1",
                        "overrides": json.dumps(TINY)}.items():
        monkeypatch.setenv(f"UCLUSTER_NB_{name.upper()}", value)
    ns = runpy.run_path(str(NOTEBOOK), run_name="ucluster_pipeline_notebook")
    assert ns["dbutils"] is None
    jets = ns["conversion"].jets
    assert jets == 600 and ns["assignment"].jets == jets
    assert ns["MODEL_URI"].startswith("models:/ucluster/")  # the assignment step used the registry
    output = pads.dataset(work / "clusters.parquet", format="parquet", partitioning="hive").to_table()
    assert output.num_rows == jets and "latent" in output.column_names
    report = ns["report"]
    assert 0 < report.metrics["cluster_acc"] <= 1 and report.table.sum() > 0
    client = MlflowClient(tracking_uri=tracking_uri(work / "train"))
    run = client.get_run(ns["RUN_ID"])
    assert run.info.status == "FINISHED" and "eval_test_cluster_acc" in run.data.metrics
    logged = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(run.info.run_id, "evaluation/test")}
    assert {"summary.txt", "confusion_matrix.png", "latent_pca.png", "jet_mass_per_cluster.png"} <= logged
    assert (work / "evaluation" / "summary.txt").read_text() == report.summary
