"""The one training loop: both engines end to end on tiny real Pythia jets, the input statistics it stores in
the model, and every pretraining target."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from ucluster.data.loader import JetStream
from ucluster.tracking import tracking_uri
from ucluster.train import schedule
from ucluster.train.trainer import train

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _local_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _config_flags(cfg) -> list[str]:
    flags = []
    for key, value in cfg.flat().items():
        if key.startswith(("data.", "model.", "train.")) or key in ("run.output_dir", "run.progress"):
            flags += [f"--{key}", ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return flags


def _hand_statistics(cfg) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([b["features"][(b["mask"] > 0.5) & (b["valid"][:, None] > 0)]
                        for b in JetStream(cfg, "train").eval_batches(64)]).astype(np.float64)
    return x.mean(0), x.std(0)


def test_both_engines_run_the_same_loop_end_to_end(tiny_config, tmp_path):
    """Horovod/TensorFlow in a worker process and JAX through `jobs/train.py --engine jax` in a subprocess:
    same phases, schedules, metrics, MLflow records and model file, with the input statistics of the training
    split inside the saved model."""
    pytest.importorskip("jax")
    cfg_h = dataclasses.replace(tiny_config, run=dataclasses.replace(tiny_config.run, output_dir=str(tmp_path / "h")))
    cfg_j = dataclasses.replace(tiny_config, run=dataclasses.replace(tiny_config.run, output_dir=str(tmp_path / "j")))
    horovod = train(cfg_h)
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "jobs.train", "--engine", "jax", *_config_flags(cfg_j)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    jax_result = json.loads(proc.stdout[proc.stdout.index("{"):proc.stdout.rindex("}") + 1])
    mean, std = _hand_statistics(tiny_config)
    epochs = tiny_config.train.epochs
    for cfg, result, engine in ((cfg_h, horovod, "horovod"), (cfg_j, jax_result, "jax")):
        client = MlflowClient(tracking_uri=tracking_uri(cfg.run.output_dir))
        run = client.get_run(result["run_id"])
        assert run.info.status == "FINISHED" and run.data.params["engine"] == engine
        for key in ("lr", "alpha"):
            history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
            expected = [getattr(schedule, "learning_rate" if key == "lr" else key)(cfg.train, e) for e in range(epochs)]
            assert [s for s, _ in history] == list(range(epochs)), engine
            np.testing.assert_allclose([v for _, v in history], expected, rtol=1e-6)
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "test_cluster_acc")]
        assert sorted(steps) == list(range(cfg.train.pretrain_epochs, epochs)), engine
        for key in ("test_cluster_acc", "val_cluster_acc", "init_test_cluster_acc", "init_val_cluster_acc"):
            assert 1 / 3 - 1e-9 <= result[key] <= 1, (engine, key)
        assert np.isfinite(result["loss"])
        # the statistics of the training split travel inside the model file
        scaling = _load_scaling(result["model_path"], env)
        np.testing.assert_allclose(scaling[0], mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(scaling[1], np.where(std > 1e-6, std, 1.0), rtol=1e-4, atol=1e-5)


def _load_scaling(model_path: str, env: dict) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) of a saved model, read in a fresh TensorFlow-backend process (the file is backend-neutral)."""
    code = ("import json, keras, ucluster.model as m; s = m.get_input_scaling(keras.saving.load_model("
            f"{model_path!r}, compile=False)); print(json.dumps([s[0].tolist(), s[1].tolist()]))")
    proc = subprocess.run([sys.executable, "-c", code], env={**env, "KERAS_BACKEND": "tensorflow"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mean, scale = json.loads(proc.stdout.strip().splitlines()[-1])
    return np.array(mean), np.array(scale)


@pytest.mark.parametrize(("target", "space"), [("mass_sd_bins", "latent"), ("truth", "latent"),
                                              ("joint_bins", "latent"), ("joint_bins", "target"),
                                              ("mass_bins", "target")])
def test_every_pretraining_target_trains_and_initialises_centroids(tiny_config, target, space):
    """Each target with each k-means space (mass_bins in the latent, the paper's, runs in every other test)."""
    model = dataclasses.replace(tiny_config.model, target=target, target_vars=["mass_sd", "tau21"],
                                target_bins=[4, 3])
    cfg = dataclasses.replace(tiny_config, model=model,
                              train=dataclasses.replace(tiny_config.train, epochs=2, kmeans_space=space))
    result = train(cfg)
    assert 1 / 3 - 1e-9 <= result["init_test_cluster_acc"] <= 1
    assert 1 / 3 - 1e-9 <= result["test_cluster_acc"] <= 1 and 0 <= result["test_class_acc"] <= 1
    assert [h["epoch"] for h in result["history"]] == [0, 1]


def test_target_coordinates_are_the_expected_bins_along_each_variable():
    from ucluster.config import load_config
    from ucluster.train.loop import target_coordinates

    cfg = load_config(None, {"model.target": "joint_bins", "model.target_vars": "mass_sd,tau21",
                             "model.target_bins": "2,4"})
    logits = np.full((2, 8), -50.0)
    logits[0, 1 * 4 + 2] = 50.0  # certain: mass bin 1 of 2, tau bin 2 of 4
    logits[1, [0, 7]] = 50.0  # half (0, 0), half (1, 3)
    np.testing.assert_allclose(target_coordinates(cfg, logits), [[0.75, 0.625], [0.5, 0.5]], atol=1e-6)
    cfg = load_config(None, {"model.mass_bins": 4})
    np.testing.assert_allclose(target_coordinates(cfg, np.eye(4)[[3]] * 100.0), [[0.875]], atol=1e-6)


def test_centroids_from_target_space_are_the_cluster_means_of_the_latent():
    """k-means in the target coordinates; each centroid is the mean latent of its cluster (whatever the latent's
    own geometry says)."""
    from ucluster.config import load_config
    from ucluster.train.loop import fit_centroids

    cfg = load_config(None, {"model.n_clusters": 2})
    rng = np.random.default_rng(0)
    coords = np.concatenate([rng.normal(0.2, 0.01, (50, 1)), rng.normal(0.8, 0.01, (50, 1))])
    latent = rng.normal(size=(100, 5)).astype(np.float32)  # no structure of its own
    centroids = fit_centroids(cfg, latent, coords)
    expected = np.stack([latent[:50].mean(0), latent[50:].mean(0)])
    order = np.argsort(centroids[:, 0])
    np.testing.assert_allclose(centroids[order], expected[np.argsort(expected[:, 0])], rtol=1e-5)
