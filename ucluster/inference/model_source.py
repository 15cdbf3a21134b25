"""Resolve ``--model`` to a local ``.keras`` file plus what its training run knew.

``--model`` may be a registered model version (``models:/<name>/<version>`` or ``models:/<name>@<alias>``), an
MLflow run (``runs:/<id>`` or the bare 32-hex id: its logged MLflow model ``model``, or for runs of older versions
the ``model/model.keras`` artifact and ``config.yaml``), a ``.keras`` file, or a directory holding one (a training
``--out``, an export, a downloaded MLflow model or run artifacts). Assignment needs more than the weights: the
feature names and particle count the model was trained on (to refuse a dataset it cannot read), the classes and jet
selection (for evaluation) and the final α (for soft assignments). Those come from, in order, an export's
``ucluster_model.json`` card, the run's parameters and ``config.yaml``, or the training checkpoint next to the
file. Shapes are read from the ``.keras`` archive's JSON, so the driver never needs TensorFlow for this.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ucluster.config import Config, ConfigError, RunConfig, config_from_dict
from ucluster.data import schema as S
from ucluster.inference import InferenceError
from ucluster.train import schedule

CARD = "ucluster_model.json"
MODEL_ARTIFACT = "model/model.keras"  # runs logged before the MLflow model (``model`` with artifacts/model.keras)
LOGGED_MODEL = "model"
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def scratch_dir(prefix: str) -> Path:
    """A temporary directory removed when this process exits (downloaded or staged model files)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def store_location(value: str, default_dir: str | Path) -> tuple[Path, str]:
    """``(output_dir, configured_uri)`` for :func:`ucluster.tracking.setup_mlflow` from a user's store value.

    A directory (a training ``--out``) or the SQLite URI of an ``mlflow.db`` becomes that directory, so that a
    new experiment keeps its artifacts beside the database (not in ``./mlruns``); other URIs stay URIs.
    """
    if value and Path(value).is_dir():
        return Path(value), ""
    if value.startswith("sqlite:///") and value.endswith("/mlflow.db"):
        return Path(value[len("sqlite:///"):]).parent, ""
    return Path(default_dir), value


def store_uri(value: str = "", default_dir: str | Path | None = None) -> str:
    """The MLflow store to use: ``$MLFLOW_TRACKING_URI`` > ``value`` (URI or directory) > the SQLite store of
    ``default_dir`` (default: the default training directory, where bare run ids are looked up)."""
    from ucluster.tracking import tracking_uri

    return tracking_uri(*store_location(value, default_dir or RunConfig().output_dir))


def open_experiment(value: str, default_dir: str | Path, experiment: str):
    """``(client, uri, experiment_id)`` for logging a new run, creating the experiment if needed.

    Like :func:`ucluster.tracking.setup_mlflow` (a new local SQLite experiment keeps its artifacts in
    ``mlartifacts`` beside the database) but through a client only: no process-wide MLflow state changes, so a
    later lookup in this process is not redirected to this store.
    """
    import logging

    from mlflow.tracking import MlflowClient

    from ucluster.tracking import tracking_uri

    logging.getLogger("alembic").setLevel(logging.WARNING)
    base, configured = store_location(value, default_dir)
    from_env = bool(os.environ.get("MLFLOW_TRACKING_URI"))
    uri = tracking_uri(base, configured)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is not None:
        return client, uri, exp.experiment_id
    location = None
    if uri.startswith("sqlite:") and not configured and not from_env:
        location = (Path(base).absolute() / "mlartifacts").as_uri()
    return client, uri, client.create_experiment(experiment, artifact_location=location)


def check_store(uri: str) -> None:
    """Refuse a SQLite store that does not exist: opening it would silently create an empty one."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        if not db.is_file():
            raise InferenceError(f"no MLflow store at {db} (set MLFLOW_TRACKING_URI or pass --tracking-uri, "
                                 "e.g. the training --out directory)")


@dataclass(frozen=True)
class KerasInfo:
    """Shapes of a saved UCluster model, read from the archive's ``config.json``."""

    max_particles: int | None
    n_features: int
    n_clusters: int
    n_outputs: int
    latent_dim: int
    centroid_step_scale: float = 1.0  # the stored centroid weight is centroids / this (ClusteringLayer)


def keras_info(path: str | Path) -> KerasInfo:
    try:
        with zipfile.ZipFile(path) as z:
            spec = json.loads(z.read("config.json"))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InferenceError(f"{path}: not a readable Keras model file ({_first_line(exc)})") from None
    try:
        layers = {layer["config"]["name"]: layer for layer in spec["config"]["layers"]}
        shape = layers["features"]["config"]["batch_shape"]
        clustering = layers["clustering"]
        return KerasInfo(max_particles=shape[1], n_features=int(shape[2]),
                         n_clusters=int(clustering["config"]["n_clusters"]),
                         n_outputs=int(layers["logits"]["config"]["units"]),
                         latent_dim=int(clustering["build_config"]["input_shape"][-1]),
                         centroid_step_scale=float(clustering["config"].get("step_scale", 1.0)))
    except (KeyError, TypeError, IndexError, ValueError):
        raise InferenceError(f"{path}: not a UCluster model (no 'features' input, 'clustering' or 'logits' "
                             "layer)") from None


def keras_centroids(path: str | Path, info: KerasInfo) -> np.ndarray | None:
    """The centroids from the archive's weights file without building the model (None if not found)."""
    import h5py

    try:
        with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as h5:
            found = [h5[f"layers/{name}/vars/0"][()] for name in h5.get("layers", {})
                     if name.startswith("clustering_layer") and f"layers/{name}/vars/0" in h5]
    except (OSError, KeyError, zipfile.BadZipFile):
        return None
    found = [c for c in found if c.shape == (info.n_clusters, info.latent_dim)]
    return np.asarray(found[0], np.float32) * np.float32(info.centroid_step_scale) if len(found) == 1 else None


def final_alpha(cfg: Config, trained: float | None = None) -> float:
    """α the centroids were trained with: ``trained`` when the run recorded it (the epoch selected on val,
    ``train.select: best_val``), else that of the last epoch; ``alpha_start`` if no clustering epoch ran."""
    if trained is not None and trained > 0:
        return float(trained)
    last = cfg.train.epochs - 1
    alpha = schedule.alpha(cfg.train, last) if last >= 0 else 0.0
    return float(alpha) if alpha > 0 else float(cfg.train.alpha_start)


@dataclass
class ModelSource:
    """A local model file and what is known about how it was trained (None/empty where unknown)."""

    model_path: str
    description: str
    max_particles: int
    n_features: int
    n_clusters: int
    n_outputs: int
    latent_dim: int
    feature_names: list[str] | None = None
    classes: list[str] = field(default_factory=list)
    alpha: float | None = None
    selection: dict | None = None  # {"mass_min", "mass_max", "pt_min", "pt_max"} of the training
    target: str | None = None
    run_id: str | None = None
    tracking_uri: str | None = None
    config: dict | None = None
    source: str = ""  # how it was resolved (runs:/<id> or a path), to resolve it again later

    def card(self) -> dict:
        """What an export writes as ``ucluster_model.json`` (everything but the local path and source)."""
        out = asdict(self)
        out.pop("model_path")
        out.pop("source")
        return {"format_version": 1, **out}


def resolve_model(spec: str, tracking: str = "", workdir: str | Path | None = None) -> ModelSource:
    """``spec``: ``models:/<name>/<version>`` or ``@<alias>``, ``runs:/<id>[/...]``, a bare run id, a ``.keras``
    file or a directory holding ``model.keras``."""
    spec = str(spec or "").strip()
    if not spec:
        raise InferenceError("no model given (--model: models:/<name>/<version>, an MLflow run id, runs:/<id>, "
                             "or a .keras file)")
    if spec.startswith("models:/"):
        return _from_registry(spec, tracking, workdir)
    if spec.startswith("runs:/"):
        return _from_run(spec[len("runs:/"):].strip("/").split("/")[0], tracking, workdir)
    path = Path(spec)
    if path.exists():
        model = _from_path(path)
        model.source = str(path.absolute())
        return model
    if _RUN_ID.fullmatch(spec):
        return _from_run(spec, tracking, workdir)
    raise InferenceError(f"{spec}: no such model file, and not an MLflow run id (give runs:/<id>, a run id, "
                         "or a .keras file)")


def _from_path(path: Path) -> ModelSource:
    model = path
    if path.is_dir():
        candidates = (path / "model.keras", path / MODEL_ARTIFACT, path / "artifacts" / "model.keras",
                      path / LOGGED_MODEL / "artifacts" / "model.keras")
        found = [c for c in candidates if c.is_file()]
        if not found:
            raise InferenceError(f"{path}: no model.keras in this directory")
        model = found[0]
    if model.suffix != ".keras":
        raise InferenceError(f"{model}: expected a .keras model file")
    info = keras_info(model)
    card_path = model.parent / CARD
    if card_path.is_file():
        try:
            card = json.loads(card_path.read_text())
            card.pop("format_version", None)
            card.pop("source", None)
            return ModelSource(model_path=str(model.absolute()), **card)
        except (ValueError, TypeError) as exc:
            raise InferenceError(f"{card_path}: unreadable model card ({_first_line(exc)})") from None
    cfg = _config_near(model)
    features = None
    if cfg is not None and cfg.data.path:
        try:
            features = S.read_meta(cfg.data.path).feature_names
        except S.DatasetError:
            pass  # the training dataset moved: only the feature count can be checked
    return _build(model, info, str(model), cfg, features, trained_alpha=_trained_alpha_near(model))


def _trained_alpha_near(model: Path) -> float | None:
    """α of the epoch whose weights the model holds, from the checkpoint beside it (None when unknown)."""
    from ucluster.train.checkpoint import read_state

    try:
        state = read_state(model.parent) or {}
    except (OSError, ValueError, KeyError):
        return None
    metrics = (state.get("best") or {}).get("metrics") or {}
    return metrics.get("alpha")


def _config_near(model: Path) -> Config | None:
    """The training config beside a model file: ``config.yaml`` (downloaded artifacts) or the checkpoint."""
    from ucluster.train.checkpoint import read_state

    for candidate in (model.parent / "config.yaml", model.parent.parent / "config.yaml"):
        if candidate.is_file():
            try:
                return config_from_dict(yaml.safe_load(candidate.read_text()), str(candidate))
            except (ConfigError, yaml.YAMLError, AttributeError, TypeError):
                return None
    try:
        state = read_state(model.parent)
    except (OSError, ValueError, KeyError):
        return None
    if state and state.get("config"):
        try:
            return config_from_dict(state["config"], "checkpoint")
        except ConfigError:
            return None
    return None


def _from_run(run_id: str, tracking: str, workdir: str | Path | None) -> ModelSource:
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = store_uri(tracking)
    check_store(uri)
    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise InferenceError(f"MLflow run {run_id} not found in {uri}") from None
    dst = _download_dir(workdir)
    try:  # the MLflow model (it carries its card); runs of older versions only have the .keras artifact
        local = _download_logged_model(client, run, dst / "logged")
        if local is not None and (local / "artifacts" / CARD).is_file():
            model = _from_path(local)
            model.source = f"runs:/{run_id}"
            return model
    except (MlflowException, OSError):
        pass
    try:
        local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=MODEL_ARTIFACT,
                                                         dst_path=str(dst), tracking_uri=uri))
    except (MlflowException, OSError):
        raise InferenceError(f"MLflow run {run_id} has no {MODEL_ARTIFACT} artifact (run status "
                             f"{run.info.status}: unfinished or failed?)") from None
    cfg = None
    try:
        cfg_file = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="config.yaml",
                                                       dst_path=str(dst), tracking_uri=uri)
        cfg = config_from_dict(yaml.safe_load(Path(cfg_file).read_text()), f"run {run_id} config.yaml")
    except (MlflowException, OSError, ConfigError, yaml.YAMLError, AttributeError, TypeError):
        cfg = None
    names = run.data.params.get("data.feature_names")
    model = _build(local, keras_info(local), f"MLflow run {run_id}", cfg, names.split(",") if names else None,
                   run_id=run_id, uri=uri, trained_alpha=run.data.metrics.get("final_alpha"))
    model.source = f"runs:/{run_id}"
    return model


def _download_dir(workdir: str | Path | None) -> Path:
    """Where downloaded model files go: ``workdir``, else a directory removed when this process exits."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # job logs, not a terminal
    dst = Path(workdir) if workdir else scratch_dir("ucluster-model-")
    dst.mkdir(parents=True, exist_ok=True)
    return dst


def _download_logged_model(client, run, dst: Path) -> Path | None:
    """The run's logged MLflow model ``model``, downloaded through this client's store (not the process's)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    found = [m for m in client.search_logged_models(experiment_ids=[run.info.experiment_id],
                                                    filter_string=f"name = '{LOGGED_MODEL}'")
             if m.source_run_id == run.info.run_id]
    if not found:
        return None
    dst.mkdir(parents=True, exist_ok=True)
    return Path(get_artifact_repository(found[0].artifact_location).download_artifacts("", str(dst)))


def _from_registry(spec: str, tracking: str, workdir: str | Path | None) -> ModelSource:
    """A registered model version (``models:/name/version`` or ``models:/name@alias``), downloaded.

    Resolved through a client of the given store: MLflow's own ``models:/`` download reads the process-wide
    registry URI instead, which in a driver running several jobs may be another job's store."""
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.tracking import MlflowClient

    body = spec[len("models:/"):].strip("/")
    name, sep, ref = body.rpartition("@") if "@" in body else body.rpartition("/")
    if not name or not ref:
        raise InferenceError(f"{spec}: expected models:/<name>/<version> or models:/<name>@<alias>")
    uri = store_uri(tracking)
    check_store(uri)
    dst = _download_dir(workdir)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        version = client.get_model_version_by_alias(name, ref) if sep == "@" else client.get_model_version(name, ref)
        source = client.get_model_version_download_uri(name, version.version)
        local = Path(get_artifact_repository(source).download_artifacts("", str(dst)))
    except (MlflowException, OSError) as exc:
        raise InferenceError(f"{spec}: no such registered model version in {uri} ({_first_line(exc)})") from None
    model = _from_path(local)
    model.source = spec
    return model


def _build(model: Path, info: KerasInfo, description: str, cfg: Config | None, features: list[str] | None,
           run_id: str | None = None, uri: str | None = None, trained_alpha: float | None = None) -> ModelSource:
    p = info.max_particles or (cfg.data.max_particles if cfg else None)
    if p is None:
        raise InferenceError(f"{model}: the model accepts any particle count and no training config says which")
    selection = None
    if cfg is not None:
        d = cfg.data
        selection = {"mass_min": d.mass_min, "mass_max": d.mass_max, "pt_min": d.pt_min, "pt_max": d.pt_max}
    return ModelSource(
        model_path=str(model.absolute()), description=description, max_particles=int(p), n_features=info.n_features,
        n_clusters=info.n_clusters, n_outputs=info.n_outputs, latent_dim=info.latent_dim, feature_names=features,
        classes=list(cfg.data.classes) if cfg else [], alpha=final_alpha(cfg, trained_alpha) if cfg else None,
        selection=selection,
        target=cfg.model.target if cfg else None, run_id=run_id, tracking_uri=uri,
        config=cfg.to_dict() if cfg else None)


def check_compatible(model: ModelSource, meta: S.DatasetMeta, data: str | Path) -> None:
    """Refuse a dataset the model cannot read as it was trained: other features, or fewer particles per jet."""
    if model.feature_names is not None and list(model.feature_names) != list(meta.feature_names):
        raise InferenceError(f"{data}: the model ({model.description}) was trained on features "
                             f"{model.feature_names}, the dataset has {meta.feature_names}")
    if model.n_features != meta.n_features:
        raise InferenceError(f"{data}: the model ({model.description}) reads {model.n_features} features per "
                             f"particle, the dataset has {meta.n_features} {meta.feature_names}")
    if model.max_particles > meta.n_particles:
        raise InferenceError(f"{data}: the model ({model.description}) reads {model.max_particles} particles per "
                             f"jet, the dataset holds only {meta.n_particles}")
