"""Tiny end-to-end trainings with real Horovod processes and a real MLflow store in a temp dir."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from mlflow.tracking import MlflowClient

from jobs import train as train_job
from ucluster.config import ConfigError, load_config
from ucluster.data import schema as S
from ucluster.distributed import LaunchError
from ucluster.tracking import tracking_uri
from ucluster.train import schedule
from ucluster.train.trainer import TrainingError, train


@pytest.fixture(autouse=True)
def _local_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _client(cfg) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri(cfg.run.output_dir))


def _history(client, run_id, key):
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def test_tiny_run_logs_params_metrics_artifacts_and_model(trained, tmp_path):
    """The session's tiny 1-worker run (tests/conftest.py: TINY, 3 epochs, its own store under its output dir)."""
    import keras

    tiny_config, result = trained.cfg, trained.result
    client = _client(tiny_config)
    run = client.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    params = run.data.params
    assert params["train.lr"] == "0.001" and params["model.k"] == "6" and params["n_workers"] == "1"
    assert params["data.feature_names"].startswith("deta,dphi")
    epochs = tiny_config.train.epochs
    assert [s for s, _ in _history(client, run.info.run_id, "loss")] == list(range(epochs))
    lr = _history(client, run.info.run_id, "lr")
    alpha = _history(client, run.info.run_id, "alpha")
    for epoch in range(epochs):
        assert lr[epoch][1] == pytest.approx(schedule.learning_rate(tiny_config.train, epoch, 1))
        assert alpha[epoch][1] == pytest.approx(schedule.alpha(tiny_config.train, epoch))
    # clustering metrics exist from the first clustering epoch on
    assert [s for s, _ in _history(client, run.info.run_id, "test_cluster_acc")] == list(range(1, epochs))
    for key in ("test_nmi", "test_ari", "test_class_acc", "jets_per_s", "focal_loss", "cluster_loss"):
        assert _history(client, run.info.run_id, key), key
    # the validation split (where hyper-parameters are chosen) is scored every epoch too, on its own jets
    assert [s for s, _ in _history(client, run.info.run_id, "val_class_acc")] == list(range(epochs))
    val_acc = _history(client, run.info.run_id, "val_cluster_acc")
    assert [s for s, _ in val_acc] == list(range(1, epochs))
    test_acc = dict(_history(client, run.info.run_id, "test_cluster_acc"))
    assert any(v != test_acc[s] for s, v in val_acc), "val metrics equal the test metrics"
    assert 1 / 3 <= result["val_cluster_acc"] <= 1
    # the k-means initialisation is scored once, at the first clustering epoch, before any deep k-means step
    init = _history(client, run.info.run_id, "init_test_cluster_acc")
    assert [s for s, _ in init] == [1] and 1 / 3 <= init[0][1] <= 1
    assert result["init_test_cluster_acc"] == pytest.approx(init[0][1])
    acc = run.data.metrics["final_test_cluster_acc"]
    assert 1 / 3 <= acc <= 1 and acc == pytest.approx(result["test_cluster_acc"])
    # the default store keeps artifacts beside it, under the output directory (not ./mlruns)
    assert run.info.artifact_uri.startswith((Path(tiny_config.run.output_dir) / "mlartifacts").absolute().as_uri())
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "centroids.npy", "confusion_matrix.png", "jet_mass_per_cluster.png",
            "jet_pt_per_cluster.png"} <= artifacts
    from ucluster.inference.model_source import _download_logged_model
    from ucluster.model import get_centroids  # registers the custom layers for loading

    # the model is the run's logged MLflow model "model" (artifacts/model.keras beside its card)
    logged = _download_logged_model(client, run, tmp_path / "logged")
    assert (logged / "MLmodel").is_file() and (logged / "artifacts" / "ucluster_model.json").is_file()
    model = keras.saving.load_model(logged / "artifacts" / "model.keras")
    centroids = np.load(client.download_artifacts(run.info.run_id, "centroids.npy"))
    assert centroids.shape == (3, tiny_config.model.latent_dim)
    np.testing.assert_allclose(get_centroids(model), centroids)


def test_resume_continues_the_same_run_and_reaches_the_same_result(trained, tmp_path):
    # The straight run is the session's deterministic tiny run; the interrupted one has the same config.
    base, full = trained.cfg, trained.result
    assert base.run.deterministic and base.train.epochs == 3
    first = dataclasses.replace(base, run=dataclasses.replace(base.run, output_dir=str(tmp_path / "b")),
                                train=dataclasses.replace(base.train, epochs=2))
    part = train(first)
    again = dataclasses.replace(first, train=base.train, run=dataclasses.replace(first.run, resume=True))
    resumed = train(again)
    assert resumed["run_id"] == part["run_id"]
    for key in ("loss", "test_cluster_acc", "test_nmi", "test_ari", "test_class_acc"):
        assert resumed[key] == pytest.approx(full[key], rel=1e-4, abs=1e-5), key
    client = _client(again)
    assert [s for s, _ in _history(client, resumed["run_id"], "loss")] == [0, 1, 2]
    np.testing.assert_allclose(_history(client, resumed["run_id"], "loss"),
                               _history(_client(base), full["run_id"], "loss"), rtol=1e-4)


def test_two_workers_scale_the_learning_rate(two_horovod_workers, tiny_config):
    """The session's 2-worker Horovod run of the tiny config (tests/conftest.py), also read by test_engines.py."""
    cfg, result = two_horovod_workers.cfg, two_horovod_workers.result
    assert cfg.run.np == -2 and cfg.train.lr == tiny_config.train.lr
    client = _client(cfg)
    run = client.get_run(result["run_id"])
    assert run.data.params["n_workers"] == "2" and run.data.params["global_batch"] == "64"
    lr = _history(client, result["run_id"], "lr")
    assert lr[0][1] == pytest.approx(2 * tiny_config.train.lr)
    assert 0 < result["test_cluster_acc"] <= 1 and 1 / 3 <= result["val_cluster_acc"] <= 1


def test_bad_inputs_fail_before_training(tiny_config, tmp_path, capsys):
    missing = dataclasses.replace(tiny_config, data=dataclasses.replace(tiny_config.data, path=str(tmp_path / "no")))
    with pytest.raises(S.DatasetError, match="dataset not found"):
        train(missing)
    # a dataset without a needed column
    broken = tmp_path / "broken"
    shutil.copytree(tiny_config.data.path, broken)
    for path in broken.rglob("*.parquet"):
        pq.write_table(pq.read_table(path).drop_columns(["n_particles"]), path)
    cfg = dataclasses.replace(tiny_config, data=dataclasses.replace(tiny_config.data, path=str(broken)))
    with pytest.raises(TrainingError, match=r"lacks column\(s\) \['n_particles'\]"):
        train(cfg)
    too_many = dataclasses.replace(tiny_config, run=dataclasses.replace(tiny_config.run, np=-64))
    with pytest.raises(LaunchError, match="64 local processes"):
        train(too_many)
    big_batch = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, batch_size=100000))
    with pytest.raises(TrainingError, match="fewer than one batch per worker"):
        train(big_batch)
    with pytest.raises(ConfigError, match=r"unknown field 'train.epoch' \(did you mean 'epochs'\?\)"):
        load_config(None, {"train.epoch": 3})
    with pytest.raises(TrainingError, match="no checkpoint"):
        train(dataclasses.replace(tiny_config, run=dataclasses.replace(tiny_config.run, resume=True)))
    # the CLI turns each into one line on stderr and exit status 2
    assert train_job.main(["--data", str(tmp_path / "no"), "--train.batch_size", "x"]) == 2
    expected = "error: --train.batch_size: field 'train.batch_size': expected int, got 'x'"
    assert capsys.readouterr().err.strip() == expected
    assert train_job.main(["--data", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "lacks column" in err and "\n" not in err


def test_preflight_warns_when_the_shuffle_buffer_spans_few_row_groups(tiny_config):
    from ucluster.train.trainer import MIN_SHUFFLE_SPAN, preflight

    tiny_config.data.shuffle_buffer = 128  # the session dataset has row groups of <= 64 jets: ~2-3 of them
    warnings = preflight(tiny_config, 1)["warnings"]
    assert len(warnings) == 1 and "data.shuffle_buffer = 128" in warnings[0] and "sorted by class" in warnings[0]
    tiny_config.data.shuffle_buffer = 64 * MIN_SHUFFLE_SPAN
    assert preflight(tiny_config, 1)["warnings"] == []


def test_self_supervised_settings_are_checked_in_one_line():
    from ucluster.config import ConfigError, load_config

    for overrides, message in [
        ({"model.target": "none"}, "model.target none trains nothing without the self-supervised term"),
        ({"model.ssl_weight": -1}, "model.ssl_weight must be >= 0, got -1"),
        ({"model.ssl_weight": 1, "model.ssl_drop": 1.0}, "ssl_drop in \\[0, 1\\)"),
        ({"model.target": "none", "model.ssl_weight": 1, "train.kmeans_space": "target"},
         "train.kmeans_space target needs a classification target"),
        # the default k-means space is the target's: a self-supervised run is told what to set
        ({"model.target": "none", "model.ssl_weight": 1}, "set train.kmeans_space latent"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(None, overrides)
    cfg = load_config(None, {"model.target": "none", "model.ssl_weight": 0.5, "train.kmeans_space": "latent"})
    assert cfg.model.ssl_weight == 0.5


def test_mass_bin_settings_are_checked_in_one_line():
    from ucluster.config import ConfigError, load_config

    for overrides, message in [
        ({"model.mass_bin_spacing": "sqrt"}, "model.mass_bin_spacing must be one of linear, log, got 'sqrt'"),
        ({"model.mass_bin_spacing": "log", "data.mass_min": 0.0}, "log needs data.mass_min > 0, got 0.0"),
        ({"model.hybrid_sd_fraction": 0.0}, "model.hybrid_sd_fraction must be in \\(0, 1\\], got 0.0"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(None, overrides)
    cfg = load_config(None, {"model.target": "mass_hybrid_bins", "model.mass_bin_spacing": "log"})
    assert (cfg.model.target, cfg.model.mass_bin_spacing, cfg.model.hybrid_sd_fraction) == (
        "mass_hybrid_bins", "log", 0.6)
    # the spacing is the mass targets': a joint grid over a window from 0 (event mode's m_jj) is not refused
    joint = load_config(None, {"model.target": "joint_bins", "data.mass_min": 0.0})
    assert joint.model.mass_bin_spacing == "log" and joint.data.mass_min == 0.0


def test_a_stored_config_from_before_the_bin_spacing_reads_back_with_linear_bins():
    """Checkpoints and models stored before model.mass_bin_spacing existed trained with equal bins in GeV: they
    read back so (resume compares against it), not with today's log default."""
    from ucluster.config import config_from_dict

    old = load_config(None, {"model.target": "mass_bins", "model.mass_bins": 20}).to_dict()
    del old["model"]["mass_bin_spacing"]
    assert config_from_dict(old).model.mass_bin_spacing == "linear"
    assert config_from_dict(load_config(None).to_dict()).model.mass_bin_spacing == "log"


def test_a_stored_config_from_before_the_k_means_space_reads_back_with_the_latent_start():
    """Before train.kmeans_space existed, k-means always ran on the latent: such a stored config reads back so."""
    from ucluster.config import config_from_dict

    old = load_config(None, {"model.target": "mass_bins", "model.mass_bin_spacing": "linear"}).to_dict()
    del old["train"]["kmeans_space"]
    assert config_from_dict(old).train.kmeans_space == "latent"
    assert config_from_dict(load_config(None).to_dict()).train.kmeans_space == "probs"


def test_default_config_is_the_hybrid_mass_target_with_the_k_means_start_on_the_probabilities():
    """What rounds 16 (target), 17 (the k-means start), 18 (50 epochs, the lr kept in the clustering phase) and 19
    (80 bins, hybrid fraction 0.6, deep k-means kept over self-labelling) chose is what ships (conf/ucluster.yaml),
    and the dataclass agrees with it."""
    from ucluster.config import Config

    cfg = load_config(None)
    assert (cfg.model.target, cfg.model.mass_bins, cfg.model.mass_bin_spacing, cfg.train.kmeans_space) == (
        "mass_hybrid_bins", 80, "log", "probs")
    assert cfg.model.hybrid_sd_fraction == 0.6 and cfg.train.cluster_objective == "kmeans"
    assert (cfg.train.epochs, cfg.train.pretrain_epochs, cfg.train.cluster_lr_factor) == (50, 20, 1.0)
    assert cfg.to_dict() == Config().to_dict()


def test_a_target_needing_columns_the_dataset_lacks_fails_before_any_worker(jet_dataset, tiny_config, tmp_path):
    """A dataset converted from files without j_mass_mmdt: the default target is refused in the driver, in one
    line that names the dataset and what to do."""
    import json

    from ucluster.data import schema as S
    from ucluster.train.trainer import TrainingError, preflight

    plain = tmp_path / "plain.parquet"
    shutil.copytree(jet_dataset, plain)
    meta = json.loads((plain / S.META_FILE).read_text())
    meta["substructure_columns"] = []  # as the converter writes it for files without the substructure
    (plain / S.META_FILE).write_text(json.dumps(meta))
    tiny_config.data.path = str(plain)
    with pytest.raises(TrainingError, match=r"plain.parquet: model.target=mass_hybrid_bins needs column\(s\) "
                                            r"\['jet_mass_sd'\].*--model.target mass_bins --train.kmeans_space "
                                            r"latent$"):
        preflight(tiny_config, 1)
    tiny_config.model.target = "mass_bins"
    assert preflight(tiny_config, 1)["selected_jets"]["train"] > 0
