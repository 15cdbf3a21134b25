"""Export a trained model for use outside this package: ``.keras``, a TensorFlow SavedModel, the registry.

The export directory holds ``model.keras`` (Keras 3; needs ``import ucluster.model`` before loading, for the
custom layers), ``saved_model/`` (plain TensorFlow: ``tf.saved_model.load`` or TF Serving, no ucluster code
needed) whose ``serve`` / ``serving_default`` signature takes ``features`` (B, P, F) and ``mask`` (B, P) and
returns the cluster id, the squared distances, the soft assignment with the run's final α baked in, the
classification scores and the latent vector; ``ucluster_model.json`` (feature names, P, classes, α, run) and
the training ``config.yaml`` when known. See docs/serving.md.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from ucluster.atomic import OutputExistsError, atomic_directory
from ucluster.inference import InferenceError
from ucluster.inference.model_source import CARD, ModelSource

SAVED_MODEL = "saved_model"


@dataclass
class ExportResult:
    out: str
    alpha: float
    registered: str | None = None  # "name/version"
    run_id: str | None = None
    note: str | None = None  # why the model was not registered


def write_saved_model(keras_path: str, path: Path, alpha: float) -> None:
    """A SavedModel with one serving function (``serve``, also the default signature) over batches of jets."""
    import keras
    import tensorflow as tf

    import ucluster.model  # noqa: F401 - registers the custom layers for loading
    from ucluster.model import soft_assignments

    model = keras.saving.load_model(keras_path, compile=False)
    spec = model.input["features"]
    p, f = int(spec.shape[1]), int(spec.shape[2])

    def serve(features, mask):
        out = model({"features": features, "mask": mask}, training=False)
        dist = out["distances"]
        return {"cluster": tf.argmin(dist, axis=-1, output_type=tf.int32), "distances": dist,
                "soft_assignment": soft_assignments(dist, alpha), "scores": tf.nn.softmax(out["logits"], axis=-1),
                "latent": out["latent"]}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=[tf.TensorSpec((None, p, f), tf.float32, name="features"),
                                                          tf.TensorSpec((None, p), tf.float32, name="mask")])
    archive.write_out(str(path), verbose=False)


def export_model(model: ModelSource, out: str | Path, *, overwrite: bool = False, alpha: float | None = None,
                 register_name: str | None = None, tracking: str = "", experiment: str = "ucluster") -> ExportResult:
    """Write the export directory atomically; optionally log it to MLflow and register a model version."""
    alpha = model.alpha if alpha is None else float(alpha)
    if alpha is None:
        raise InferenceError(f"{model.description}: no training config says which α the soft assignment uses; "
                             "pass --alpha")
    out = Path(out)
    card = model.card()
    card["alpha"] = alpha
    try:
        with atomic_directory(out, overwrite=overwrite) as tmp:
            shutil.copyfile(model.model_path, tmp / "model.keras")
            write_saved_model(model.model_path, tmp / SAVED_MODEL, alpha)
            (tmp / CARD).write_text(json.dumps(card, indent=2) + "\n")
            if model.config:
                (tmp / "config.yaml").write_text(yaml.safe_dump(model.config, sort_keys=False))
    except OutputExistsError as exc:
        raise InferenceError(str(exc)) from None
    result = ExportResult(str(out), alpha, run_id=model.run_id)
    if register_name:
        register(result, model, out, register_name, tracking, experiment)
    return result


def register(result: ExportResult, model: ModelSource, out: Path, name: str, tracking: str, experiment: str) -> None:
    """Log the export into the model's run (or a new run) and register it as an MLflow model version of ``name``.

    The version is an MLflow pyfunc model (:mod:`ucluster.inference.pyfunc`), so ``mlflow.pyfunc.load_model``,
    ``spark_udf`` and ``mlflow models serve`` take ``models:/<name>/<version>``. A store without a model registry
    (or that refuses the name) leaves a note instead of failing the export.
    """
    import tempfile

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from ucluster.config import RunConfig
    from ucluster.inference.model_source import check_store, open_experiment, store_uri
    from ucluster.inference.pyfunc import example_rows, save_pyfunc

    value = tracking or model.tracking_uri or ""
    uri = store_uri(value)
    card = {**model.card(), "alpha": result.alpha}
    try:
        if model.run_id:
            check_store(uri)
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            run_id = model.run_id
        else:
            client, uri, exp_id = open_experiment(value, RunConfig().output_dir, experiment)
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            run_id = client.create_run(exp_id, run_name="export", tags={"ucluster.job": "export"}).info.run_id
        client.log_artifacts(run_id, str(out), artifact_path="export")
        # Through a client only (no process-wide MLflow state): the MLflow model beside the export, then a version
        with tempfile.TemporaryDirectory() as tmp:
            # the training's input example (its dataset's first test jets), where that dataset is still there
            data = ((model.config or {}).get("data") or {}).get("path")
            save_pyfunc(out / "model.keras", card, Path(tmp) / "mlflow_model", example=example_rows(data))
            client.log_artifacts(run_id, str(Path(tmp) / "mlflow_model"), artifact_path="export_mlflow_model")
        if not model.run_id:
            client.set_terminated(run_id)
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name, description="UCluster jet clustering (ABCnet + deep k-means)")
        source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/export_mlflow_model"
        version = client.create_model_version(name, source=source, run_id=run_id,
                                              tags={"alpha": str(result.alpha), "n_clusters": str(model.n_clusters)},
                                              description=f"export of {model.description}")
        result.registered, result.run_id = f"{name}/{version.version}", run_id
    except MlflowException as exc:
        result.note = f"not registered in {uri}: {str(exc).strip().splitlines()[0]}"
