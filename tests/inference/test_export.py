"""Export of the trained tiny model: .keras and SavedModel give the same clusters; MLflow registry versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas.testing as pd_testing
import pytest
from mlflow.tracking import MlflowClient

from jobs import export as export_job
from ucluster.inference import InferenceError
from ucluster.inference.model_source import CARD, resolve_model
from ucluster.inference.predict import soft_assignment
from ucluster.tracking import tracking_uri


def test_export_loads_both_ways_and_registers(trained, registry, jet_dataset, tmp_path, capsys):
    import keras
    import tensorflow as tf

    import ucluster.model  # noqa: F401 - custom layers for the .keras file

    out = tmp_path / "export"
    args = ["--run", trained.run_id, "--tracking-uri", str(trained.run_dir), "--out", str(out),
            "--register-name", "ucluster-test"]
    assert export_job.main(args) == 0
    assert "registered as ucluster-test/1" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"model.keras", "saved_model", CARD, "config.yaml"}
    card = json.loads((out / CARD).read_text())
    assert card["alpha"] == trained.alpha and card["run_id"] == trained.run_id and card["classes"] == ["w", "z", "t"]

    rng = np.random.default_rng(0)
    n = np.array([30, 12, 5, 21])
    mask = (np.arange(30)[None, :] < n[:, None]).astype(np.float32)
    features = (rng.normal(size=(4, 30, 8)) * mask[..., None]).astype(np.float32)
    ref = keras.saving.load_model(str(trained.model_path), compile=False)({"features": features, "mask": mask})
    copy = keras.saving.load_model(str(out / "model.keras"), compile=False)({"features": features, "mask": mask})
    np.testing.assert_allclose(copy["distances"], ref["distances"], rtol=1e-6)
    served = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"](
        features=tf.constant(features), mask=tf.constant(mask))
    np.testing.assert_allclose(served["distances"], ref["distances"], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(served["cluster"], np.argmin(ref["distances"], axis=1))
    np.testing.assert_allclose(served["soft_assignment"], soft_assignment(np.asarray(ref["distances"]), trained.alpha),
                               rtol=1e-4, atol=1e-6)

    client = MlflowClient(tracking_uri=tracking_uri(trained.run_dir))
    version = client.get_model_version("ucluster-test", "1")
    assert version.run_id == trained.run_id and version.source.endswith("/export_mlflow_model")
    assert version.source.startswith((trained.run_dir / "mlartifacts").as_uri())  # artifacts beside the store
    registered = resolve_model("models:/ucluster-test/1", str(trained.run_dir))
    assert registered.alpha == trained.alpha and Path(registered.model_path).is_file()
    assert "saved_model" in {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(trained.run_id, "export")}
    # the version is an MLflow model with the training's input example, and predicts the in-process clusters
    import mlflow
    import pyarrow.parquet as pq

    from tests.inference.conftest import reference_predictions

    exported = mlflow.pyfunc.load_model("models:/ucluster-test/1")
    trained_model = mlflow.pyfunc.load_model(f"runs:/{trained.run_id}/model")
    example = exported.input_example
    assert example is not None and len(example) == 2
    pd_testing.assert_frame_equal(example, trained_model.input_example)
    table = pq.read_table(sorted((Path(jet_dataset) / "split=test").glob("*.parquet")),
                          columns=["features", "n_particles", "jet_key"])
    got = exported.predict(table.select(["features", "n_particles"]).to_pandas())
    ref = reference_predictions(trained.cfg, jet_dataset, trained.model_path, ("test",))
    by_key = dict(zip(ref["key"].tolist(), ref["distances"].argmin(axis=1).tolist(), strict=True))
    assert got["cluster"].tolist() == [by_key[k] for k in table.column("jet_key").to_pylist()]
    assert exported.predict(example)["cluster"].tolist() == trained_model.predict(example)["cluster"].tolist()

    # the export is itself a model source for assignment, self-described by its card
    again = resolve_model(str(out))
    assert again.alpha == trained.alpha and again.feature_names == card["feature_names"]

    # an existing output is refused (one line, exit 2) before anything is downloaded
    assert export_job.main(args) == 2
    assert capsys.readouterr().err.strip().endswith("output already exists (pass --overwrite to replace it)")


def test_local_file_without_run_needs_alpha_and_gets_a_run_when_registered(trained, tmp_path, capsys):
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "model.keras").write_bytes(trained.model_path.read_bytes())  # no config, checkpoint or card beside it
    model = resolve_model(str(lone / "model.keras"))
    assert model.alpha is None and model.feature_names is None and model.max_particles == 30
    assert export_job.main(["--run", str(lone), "--out", str(tmp_path / "x")]) == 2
    assert "pass --alpha" in capsys.readouterr().err
    store = tmp_path / "store"
    store.mkdir()
    assert export_job.main(["--run", str(lone), "--out", str(tmp_path / "x"), "--alpha", "4", "--register-name",
                            "lone", "--tracking-uri", str(store)]) == 0
    assert "registered as lone/1" in capsys.readouterr().out
    client = MlflowClient(tracking_uri=tracking_uri(store))
    assert client.get_model_version("lone", "1").tags["alpha"] == "4.0"
    lone_run = client.get_run(client.get_model_version("lone", "1").run_id)
    assert lone_run.info.artifact_uri.startswith((store / "mlartifacts").as_uri())
    with pytest.raises(InferenceError, match="not a readable Keras model file"):
        (lone / "model.keras").write_bytes(b"junk")
        resolve_model(str(lone / "model.keras"))
