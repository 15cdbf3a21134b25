"""MLflow set-up shared by the jobs: one place decides where results go.

Precedence: ``$MLFLOW_TRACKING_URI`` (also what Databricks sets) > ``run.tracking_uri`` > a local SQLite
store ``<output_dir>/mlflow.db`` with artifacts under ``<output_dir>/mlartifacts``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

# An unreachable server must not stall training for minutes: MLflow's defaults retry 7 times with exponential
# backoff (about 4 minutes per call). Users can still set their own values.
HTTP_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


class TrackingUnavailable(RuntimeError):
    """The MLflow tracking store does not answer."""


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
    for key, value in HTTP_LIMITS.items():
        os.environ.setdefault(key, value)
    from_env = bool(os.environ.get("MLFLOW_TRACKING_URI"))  # read first: set_tracking_uri exports the variable
    uri = tracking_uri(output_dir, configured_uri)
    mlflow.set_tracking_uri(uri)
    if not from_env:  # MLflow exported it: a driver would then send every later job of the process to this store
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        artifact_location = None
        if uri.startswith("sqlite:") and not configured_uri and not from_env:
            artifact_location = (Path(output_dir).absolute() / "mlartifacts").as_uri()
        exp_id = mlflow.create_experiment(experiment, artifact_location=artifact_location)
    else:
        exp_id = exp.experiment_id
    user_experiment = os.environ.get("MLFLOW_EXPERIMENT_ID")
    mlflow.set_experiment(experiment_id=exp_id)
    if user_experiment is None:  # exported too; an id means nothing in another job's store
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    return exp_id


def setup_or_fail(output_dir: str | Path, experiment: str, configured_uri: str = "") -> str:
    """:func:`setup_mlflow`, or :class:`TrackingUnavailable` with one line (credentials masked) when the store
    does not answer: checked on the driver before any worker starts."""
    from ucluster.redact import redact_text

    try:
        return setup_mlflow(output_dir, experiment, configured_uri)
    except Exception as exc:  # noqa: BLE001 - connection refused, DNS, auth, a locked database, ...
        text = str(exc).strip()
        cause = redact_text(text.splitlines()[0] if text else type(exc).__name__)[:300]
        uri = redact_text(tracking_uri(output_dir, configured_uri))
        raise TrackingUnavailable(
            f"MLflow tracking store {uri} is unavailable ({cause}); start it or fix run.tracking_uri / "
            "$MLFLOW_TRACKING_URI (unset both to record into a local store under --out)") from None


def ui_hint(output_dir: str | Path, configured_uri: str = "") -> str:
    from ucluster.redact import redact_uri

    uri = tracking_uri(output_dir, configured_uri)
    if uri.startswith("sqlite:"):
        return f".venv/bin/mlflow ui --backend-store-uri {uri}"
    return f"open the MLflow UI of {redact_uri(uri)}"


def launch_source() -> tuple[str, str]:
    """``(source, git commit)`` of the code that launched a training, for the run's Source in the MLflow UI.

    A Databricks notebook gives its workspace path; a script its path relative to the repository (e.g.
    ``jobs/train.py``) or its absolute path. The commit is the repository's HEAD when it is a git checkout.
    """
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    source = ""
    try:
        from mlflow.utils import databricks_utils

        if databricks_utils.is_in_databricks_notebook():
            source = databricks_utils.get_notebook_path() or ""
    except Exception:  # noqa: BLE001 - not on Databricks, or an MLflow without these helpers
        source = ""
    if not source and sys.argv and sys.argv[0]:
        script = Path(sys.argv[0]).resolve()
        source = str(script.relative_to(repo)) if script.is_relative_to(repo) else str(script)
    commit = ""
    if (repo / ".git").exists():
        try:
            commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                    timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
    return source, commit
