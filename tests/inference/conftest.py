"""Helpers of the inference tests; the tiny trained model they share is the ``trained`` fixture of tests/conftest.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _local_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def registry(trained, monkeypatch):
    """The trained run's store as the process's tracking and registry URI (``models:/`` resolves there)."""
    uri = f"sqlite:///{trained.run_dir.absolute() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)  # set_registry_uri exports it too; monkeypatch removes it after
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def reference_predictions(cfg, data: str | Path, model_path: str | Path, splits=("train", "test", "val")) -> dict:
    """Per-jet outputs computed in this process the way training feeds the model (JetStream, no selection)."""
    import keras

    import ucluster.model  # noqa: F401 - custom layers
    from ucluster.data import schema as S
    from ucluster.data.loader import JetStream

    meta = S.read_meta(data)
    wide = dataclasses.replace(cfg, data=dataclasses.replace(
        cfg.data, path=str(data), classes=list(meta.class_names), mass_min=-1.0, mass_max=1e9, pt_min=-1.0,
        pt_max=1e9))
    model = keras.saving.load_model(str(model_path), compile=False)
    parts: dict[str, list] = {"key": [], "split": [], "logits": [], "latent": [], "distances": []}
    for split in splits:
        if not S.split_files(data, split):
            continue
        for batch in JetStream(wide, split, targets=False).eval_batches(64):  # every jet; no target binned
            out = model({"features": batch["features"], "mask": batch["mask"]}, training=False)
            valid = batch["valid"] > 0
            parts["key"].append(batch["key"][valid])
            parts["split"].append(np.full(int(valid.sum()), split))
            for name in ("logits", "latent", "distances"):
                parts[name].append(np.asarray(out[name])[valid])
    return {k: np.concatenate(v) for k, v in parts.items()}
