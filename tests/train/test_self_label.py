"""train.cluster_objective self_label: the labels reach the TensorFlow step, the loop labels each cluster's most
confident training jets, relabels on schedule, and a resumed run trains on the labels its checkpoint stored."""

from __future__ import annotations

import sys

import cloudpickle
import keras
import numpy as np
import pytest

from ucluster.config import ModelConfig, TrainConfig, load_config
from ucluster.data.loader import JetStream
from ucluster.model import build_model, self_label_loss, set_centroids
from ucluster.train import checkpoint as ckpt
from ucluster.train.engines.horovod_tf import StepFunctions
from ucluster.train.loop import _relabel_due


def test_cluster_target_turns_the_tensorflow_steps_clustering_term_into_the_self_label_loss():
    rng = np.random.default_rng(0)
    n, p, f = 24, 10, 5
    mask = (np.arange(p)[None] < rng.integers(2, p + 1, size=n)[:, None]).astype("float32")
    batch = {"features": rng.normal(size=(n, p, f)).astype("float32") * mask[..., None], "mask": mask,
             "target": rng.integers(0, 4, size=n).astype("int32")}
    labels = np.array([0, 1, 2, -1] * 6, "int32")
    centroids = rng.normal(size=(3, 8)).astype("float32")
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    figures = {}
    for name, extra in (("kmeans", {}), ("self_label", {"cluster_target": labels})):
        keras.utils.set_random_seed(0)
        model = build_model(ModelConfig(k=4, gap1_channels=4, gap2_channels=4, gap2_heads=2, point_channels=[8, 8],
                                        latent_dim=8, head_units=[8], dropout=0.0, n_clusters=3), p, f, 4)
        set_centroids(model, centroids)
        optimizer = keras.optimizers.Adam(1e-2)
        optimizer.build(model.trainable_variables)
        fns = StepFunctions(model, optimizer, 2.0)
        dist = fns.predict(batch["features"], batch["mask"])[2].numpy()
        figures[name] = fns.train({**batch, **extra}, alpha=2.0, beta=1.0).numpy()
    want = float(np.asarray(self_label_loss(dist, 2.0, labels)).sum()) / (labels >= 0).sum()
    assert figures["self_label"][2] == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert abs(figures["self_label"][2] - figures["kmeans"][2]) > 1e-3
    assert figures["self_label"][1] == pytest.approx(figures["kmeans"][1], rel=1e-5)  # focal term untouched


def test_relabelling_comes_at_the_first_clustering_epoch_then_every_n():
    t = TrainConfig(pretrain_epochs=5, self_label_every=0)
    assert _relabel_due(t, 5, unlabelled=True)
    assert not any(_relabel_due(t, e, unlabelled=False) for e in range(5, 30))
    t = TrainConfig(pretrain_epochs=5, self_label_every=3)
    assert [e for e in range(5, 15) if _relabel_due(t, e, unlabelled=False)] == [8, 11, 14]


def _train_each(configs: list[dict]) -> list[dict]:
    from ucluster.train.trainer import train_worker

    return [train_worker(config) for config in configs]


cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the worker cannot import this test module


@pytest.fixture(scope="module")
def self_label_runs(tiny_overrides, tmp_path_factory):
    """In one Horovod worker: a run relabelling every clustering epoch (4 epochs, 1 pretraining) and one labelled
    once (3 epochs); then, in a second launch, the latter resumed for a 4th epoch. Returns the configs, the
    results and the labels each checkpoint stored."""
    from ucluster.distributed import HorovodRunner
    from ucluster.train.trainer import preflight

    out = tmp_path_factory.mktemp("self_label")
    base = {**tiny_overrides, "train.cluster_objective": "self_label", "train.self_label_fraction": 0.5}
    every = load_config(None, {**base, "run.output_dir": str(out / "every"), "train.self_label_every": 1,
                               "train.epochs": 4})
    once = load_config(None, {**base, "run.output_dir": str(out / "once"), "train.epochs": 3})
    resumed = load_config(None, {**base, "run.output_dir": str(out / "once"), "train.epochs": 4, "run.resume": True})
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        for cfg in (every, once):
            preflight(cfg, 1)
        results = HorovodRunner(np=-1).run(_train_each, configs=[every.to_dict(), once.to_dict()])
        stored_once = ckpt.read_self_labels(once.run.output_dir)
        preflight(resumed, 1)
        results += HorovodRunner(np=-1).run(_train_each, configs=[resumed.to_dict()])
    return {"configs": (every, once, resumed), "results": results, "stored_once": stored_once,
            "stored_resumed": ckpt.read_self_labels(resumed.run.output_dir),
            "stored_every": ckpt.read_self_labels(every.run.output_dir)}


def test_each_clustering_epoch_relabels_half_of_each_clusters_training_jets(self_label_runs):
    every = self_label_runs["configs"][0]
    history = self_label_runs["results"][0]["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    assert "self_label_fraction" not in history[0]  # pretraining: no centroids, no labels
    for h in history[1:]:
        assert 0.45 <= h["self_label_fraction"] <= 0.6, h["self_label_fraction"]
        assert 1 / 3 - 1e-9 <= h["self_label_cluster_acc"] <= 1
        assert np.isfinite(h["cluster_loss"]) and h["cluster_loss"] > 0
    keys, labels = self_label_runs["stored_every"]
    train_keys = np.concatenate([b["key"][b["valid"] > 0] for b in JetStream(every, "train").eval_batches(64)])
    np.testing.assert_array_equal(keys, np.sort(train_keys))  # every training jet, sorted for the lookup
    assert set(np.unique(labels)) <= {-1, 0, 1, 2} and (labels >= 0).mean() == pytest.approx(
        history[-1]["self_label_fraction"])


def test_a_resumed_run_trains_on_the_labels_its_checkpoint_stored(self_label_runs):
    _, once, resumed = self_label_runs["results"]
    assert [h["epoch"] for h in once["history"]] == [0, 1, 2]
    assert "self_label_fraction" in once["history"][1] and "self_label_fraction" not in once["history"][2]
    assert [h["epoch"] for h in resumed["history"]] == [0, 1, 2, 3]
    # labelled once: the resumed epoch reads the stored labels rather than labelling again from the resumed model
    assert "self_label_fraction" not in resumed["history"][3]
    for a, b in zip(self_label_runs["stored_once"], self_label_runs["stored_resumed"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_resuming_without_stored_labels_is_refused_in_one_line(tmp_path):
    cfg = load_config(None, {"run.output_dir": str(tmp_path)})
    ckpt.save_checkpoint(cfg.run.output_dir, build_model(cfg.model, 8, 4, 3), keras.optimizers.Adam(),
                         {"epoch": 0})
    with pytest.raises(ckpt.CheckpointError, match="no self labels stored") as err:
        ckpt.read_self_labels(cfg.run.output_dir)
    assert "\n" not in str(err.value)
