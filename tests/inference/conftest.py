"""A tiny model trained for real once and shared by the inference test modules (training takes ~40 s here)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

TINY = {
    "data.max_particles": 30, "data.shuffle_buffer": 256,
    "model.k": 6, "model.gap1_channels": 8, "model.gap2_channels": 8, "model.gap2_heads": 2,
    "model.point_channels": "16,16", "model.latent_dim": 16, "model.head_units": "16",
    "model.dropout": 0.0, "model.mass_bins": 8,
    "train.batch_size": 32, "train.pretrain_epochs": 1, "train.epochs": 3, "train.kmeans_sample": 300,
    "run.np": -1, "run.progress": False,
}


@pytest.fixture(autouse=True)
def _local_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def trained(jet_dataset, tmp_path_factory):
    """Train the tiny model (3 epochs; α of the epoch selected on val: 1 or 3) into a fresh directory with its own
    MLflow store.

    Session-scoped rather than per module: the modules only read the model (and log evaluations beside it),
    and one training fewer keeps these tests within their time budget on two cores."""
    from ucluster.config import load_config
    from ucluster.train.trainer import train

    out = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        cfg = load_config(None, {**TINY, "data.path": str(jet_dataset), "run.output_dir": str(out / "run")})
        result = train(cfg)
    return SimpleNamespace(cfg=cfg, result=result, run_id=result["run_id"], run_dir=Path(cfg.run.output_dir),
                           model_path=Path(result["model_path"]), alpha=result["alpha"])


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
        for batch in JetStream(wide, split).eval_batches(64):
            out = model({"features": batch["features"], "mask": batch["mask"]}, training=False)
            valid = batch["valid"] > 0
            parts["key"].append(batch["key"][valid])
            parts["split"].append(np.full(int(valid.sum()), split))
            for name in ("logits", "latent", "distances"):
                parts[name].append(np.asarray(out[name])[valid])
    return {k: np.concatenate(v) for k, v in parts.items()}
