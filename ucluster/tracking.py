"""MLflow set-up shared by the jobs: one place decides where results go.

Precedence: ``$MLFLOW_TRACKING_URI`` (also what Databricks sets) > ``run.tracking_uri`` > a local SQLite
store ``<output_dir>/mlflow.db`` with artifacts under ``<output_dir>/mlartifacts``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path


def tracking_uri(output_dir: str | Path, configured: str = "") -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if configured:
        return configured
    return f"sqlite:///{Path(output_dir).absolute() / 'mlflow.db'}"


def setup_mlflow(output_dir: str | Path, experiment: str, configured_uri: str = "") -> str:
    """Point MLflow at the right store and experiment; returns the experiment id."""
    import mlflow

    logging.getLogger("alembic").setLevel(logging.WARNING)  # the SQLite store's migrations are noisy
    from_env = bool(os.environ.get("MLFLOW_TRACKING_URI"))  # read first: set_tracking_uri exports the variable
    uri = tracking_uri(output_dir, configured_uri)
    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        artifact_location = None
        if uri.startswith("sqlite:") and not configured_uri and not from_env:
            artifact_location = (Path(output_dir).absolute() / "mlartifacts").as_uri()
        exp_id = mlflow.create_experiment(experiment, artifact_location=artifact_location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def ui_hint(output_dir: str | Path, configured_uri: str = "") -> str:
    uri = tracking_uri(output_dir, configured_uri)
    if uri.startswith("sqlite:"):
        return f".venv/bin/mlflow ui --backend-store-uri {uri}"
    return f"open the MLflow UI of {uri}"
