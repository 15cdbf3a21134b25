"""The one training loop: both engines end to end on tiny real Pythia jets, the input statistics it stores in
the model, and every pretraining target."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from ucluster.data.loader import JetStream
from ucluster.tracking import tracking_uri
from ucluster.train import schedule
from ucluster.train.trainer import n_classes

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


def test_both_engines_run_the_same_loop_end_to_end(trained, tiny_config, tmp_path):
    """Horovod/TensorFlow in a worker process (the session's tiny run, tests/conftest.py) and JAX through
    `jobs/train.py --engine jax` in a subprocess: same phases, schedules, metrics, MLflow records and model file,
    with the input statistics of the training split inside the saved model."""
    pytest.importorskip("jax")
    cfg_h, horovod = trained.cfg, trained.result
    assert cfg_h.flat() == {**tiny_config.flat(), "run.output_dir": cfg_h.run.output_dir, "run.deterministic": True}
    cfg_j = dataclasses.replace(tiny_config, run=dataclasses.replace(tiny_config.run, output_dir=str(tmp_path / "j")))
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "jobs.train", "--engine", "jax", *_config_flags(cfg_j)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    jax_result = json.loads(proc.stdout[proc.stdout.index("{"):proc.stdout.rindex("}") + 1])
    mean, std = _hand_statistics(tiny_config)
    epochs = tiny_config.train.epochs
    runs = ((cfg_h, horovod, "horovod"), (cfg_j, jax_result, "jax"))
    # the statistics of the training split travel inside each model file
    scalings = _load_scalings([result["model_path"] for _, result, _ in runs])
    for (cfg, result, engine), scaling in zip(runs, scalings, strict=True):
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
        np.testing.assert_allclose(scaling[0], mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(scaling[1], np.where(std > 1e-6, std, 1.0), rtol=1e-4, atol=1e-5)


def _load_scalings(model_paths: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(mean, scale) of each saved model, read in this TensorFlow-backend process (the file is backend-neutral:
    the JAX-written one loads here too)."""
    import keras

    import ucluster.model as m

    assert keras.backend.backend() == "tensorflow"
    scalings = [m.get_input_scaling(keras.saving.load_model(path, compile=False)) for path in model_paths]
    return [(np.asarray(mean), np.asarray(scale)) for mean, scale in scalings]


TARGETS = [("mass_bins", "latent"), ("mass_sd_bins", "latent"), ("mass_hybrid_bins", "latent"), ("truth", "latent"),
           ("joint_bins", "latent"), ("joint_bins", "target"), ("mass_bins", "target"),
           ("mass_hybrid_bins", "target"), ("joint_bins", "probs"), ("none", "latent"),
           ("none-dino", "latent")]
# none: self-supervised pretraining (model.ssl_weight), swapped prediction; none-dino: self-distillation;
# mass_hybrid_bins runs with log-spaced bins


def _train_each(configs: list[dict]) -> list[dict]:
    """In one Horovod worker process: the worker side of train() (train_worker) for each config in turn."""
    from ucluster.train.trainer import train_worker

    return [train_worker(config) for config in configs]


cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the worker cannot import this test module


@pytest.fixture(scope="module")
def target_runs(tiny_overrides, tmp_path_factory):
    """Every target/space pair trained (2 epochs) in one worker process rather than one launch each: the
    launch (process start-up, imports) is the same for every target and costs more than the training itself."""
    from ucluster.config import load_config
    from ucluster.distributed import HorovodRunner
    from ucluster.train.trainer import preflight

    out = tmp_path_factory.mktemp("targets")
    configs = []
    for target, space in TARGETS:
        name, _, method = target.partition("-")
        cfg = load_config(None, {**tiny_overrides, "run.output_dir": str(out / f"{target}-{space}"),
                                 "model.target": name, "model.target_vars": "mass_sd,tau21",
                                 "model.target_bins": "4,3", "train.epochs": 2, "train.kmeans_space": space,
                                 "model.ssl_weight": 1.0 if name == "none" else 0.0,
                                 "model.ssl_method": method or "swav",
                                 "model.mass_bin_spacing": "log" if name == "mass_hybrid_bins" else "linear"})
        preflight(cfg, 1)  # the driver's checks, as train() does before launching
        configs.append(cfg)
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        results = HorovodRunner(np=-1).run(_train_each, configs=[c.to_dict() for c in configs])
    return dict(zip(TARGETS, zip(configs, results, strict=True), strict=True))


@pytest.mark.parametrize(("target", "space"), TARGETS)
def test_every_pretraining_target_trains_and_initialises_centroids(target_runs, target, space):
    """Each target with each k-means space (the default, hybrid-mass bins with the start on the probabilities, runs
    in every other test; mass_bins in the latent is the paper's)."""
    cfg, result = target_runs[target, space]
    assert 1 / 3 - 1e-9 <= result["init_test_cluster_acc"] <= 1
    assert 1 / 3 - 1e-9 <= result["test_cluster_acc"] <= 1 and 0 <= result["test_class_acc"] <= 1
    assert [h["epoch"] for h in result["history"]] == [0, 1]
    # this result is the run of this target and space (one process trained them all, in turn)
    params = MlflowClient(tracking_uri=tracking_uri(cfg.run.output_dir)).get_run(result["run_id"]).data.params
    name, _, method = target.partition("-")
    assert (params["model.target"], params["train.kmeans_space"]) == (name, space)
    assert params["model.ssl_method"] == (method or "swav")
    assert params["model.mass_bin_spacing"] == ("log" if name == "mass_hybrid_bins" else "linear")
    assert params["model.n_classes"] == str(n_classes(cfg))


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

    cfg = load_config(None, {"model.n_clusters": 2, "train.kmeans_space": "target"})
    rng = np.random.default_rng(0)
    coords = np.concatenate([rng.normal(0.2, 0.01, (50, 1)), rng.normal(0.8, 0.01, (50, 1))])
    latent = rng.normal(size=(100, 5)).astype(np.float32)  # no structure of its own
    centroids = fit_centroids(cfg, latent, coords)
    expected = np.stack([latent[:50].mean(0), latent[50:].mean(0)])
    order = np.argsort(centroids[:, 0])
    np.testing.assert_allclose(centroids[order], expected[np.argsort(expected[:, 0])], rtol=1e-5)


def test_probs_space_clusters_the_class_probabilities_unscaled():
    """train.kmeans_space probs: k-means on the softmax outputs as they are (rows sum to 1), centroids = latent
    means. Three bins that are almost never predicted carry a tiny alternating pattern: standardised per column
    (as for target) it would outweigh the real split between bins 0 and 1, so the two spaces must part ways."""
    from ucluster.config import load_config
    from ucluster.train.loop import fit_centroids, kmeans_coordinates

    rng = np.random.default_rng(1)
    logits = np.full((100, 5), -9.0)
    logits[:50, 0] = logits[50:, 1] = 3.0
    logits[::2, 2:] += 0.5  # every other jet, both halves: a rare-bin pattern of size ~1e-5
    probs_cfg = load_config(None, {"model.n_clusters": 2, "model.mass_bins": 5, "train.kmeans_space": "probs"})
    coords = kmeans_coordinates(probs_cfg, logits)
    assert coords.shape == (100, 5) and coords.dtype == np.float32
    np.testing.assert_allclose(coords.sum(axis=1), 1.0, rtol=1e-5)
    latent = rng.normal(size=(100, 5)).astype(np.float32)
    halves = np.stack([latent[:50].mean(0), latent[50:].mean(0)])
    alternate = np.stack([latent[::2].mean(0), latent[1::2].mean(0)])

    def same_rows(a: np.ndarray, b: np.ndarray) -> bool:
        return np.allclose(a[np.argsort(a[:, 0])], b[np.argsort(b[:, 0])], rtol=1e-5)

    assert same_rows(fit_centroids(probs_cfg, latent, coords), halves)
    target_cfg = load_config(None, {"model.n_clusters": 2, "model.mass_bins": 5, "train.kmeans_space": "target"})
    assert same_rows(fit_centroids(target_cfg, latent, coords), alternate)  # what standardising would do


def test_moved_fractions_tell_a_relabelling_from_real_moves():
    from ucluster.train.loop import moved_fractions

    swapped = np.array([[0, 40, 0], [30, 0, 0], [0, 0, 30]], float)  # clusters 0 and 1 swapped identities
    assert moved_fractions(swapped) == pytest.approx((0.7, 0.0))
    real = np.array([[30, 10, 0], [0, 30, 0], [5, 0, 25]], float)
    assert moved_fractions(real) == pytest.approx((0.15, 0.15))


def test_a_run_resumed_past_its_init_reports_moves_from_the_previous_epoch_only(tiny_config):
    """The k-means init's assignment lives in memory: a fresh run compares every later epoch with it, while a run
    resumed past the init (``init_assignment_lost``) must not report the resume point as ``moved_from_init``."""
    from ucluster.train.engine import SingleProcessCollectives
    from ucluster.train.loop import _Loop

    init, later = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 2, 0])
    fresh = _Loop(tiny_config, SingleProcessCollectives())
    assert fresh._moves(init) == {}
    moved = fresh._moves(later)
    assert moved["test_moved_from_init"] == moved["test_moved_from_prev"] == pytest.approx(2 / 6)
    assert fresh._moves(init)["test_moved_from_init"] == 0.0  # still against the init, not the previous epoch

    resumed = _Loop(tiny_config, SingleProcessCollectives())
    resumed.init_assignment_lost = True
    assert resumed._moves(later) == {}
    moved = resumed._moves(init)
    assert moved["test_moved_from_prev"] == pytest.approx(2 / 6) and not any("from_init" in k for k in moved)
    assert not any("from_init" in k for k in resumed._moves(later))


def test_partition_means_are_the_centroids_a_partition_gives():
    from ucluster.train.loop import partition_means

    sample = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [0.0, 6.0]], np.float32)
    got = partition_means(sample, np.array([0, 0, 1, 1]), 2)
    np.testing.assert_allclose(got, [[1.0, 0.0], [0.0, 5.0]])
    assert got.dtype == np.float32
    previous = np.array([[9.0, 9.0], [8.0, 8.0], [7.0, 7.0]], np.float32)
    np.testing.assert_allclose(partition_means(sample, np.array([0, 0, 2, 2]), 3, previous)[1], [8.0, 8.0])
    with pytest.raises(ValueError, match="part 1 of 3 is empty"):
        partition_means(sample, np.array([0, 0, 2, 2]), 3)
