"""Tail averaging of the clustering phase (``train.average_epochs``): training follows the live weights, and the
model evaluated and saved is the mean of the last epochs' weights."""

from __future__ import annotations

import sys

import cloudpickle
import numpy as np
import pytest

from ucluster.train.averaging import TailAverage, assign_trainable, full_weights


def _tiny_model():
    from ucluster.config import ModelConfig
    from ucluster.model import build_model

    cfg = ModelConfig(k=4, gap1_channels=4, gap2_channels=4, gap2_heads=1, point_channels=[8], latent_dim=8,
                      head_units=[8], mass_bins=4)
    return build_model(cfg, 12, 4, 4)


def test_the_window_mean_replaces_only_trainable_weights():
    from ucluster.model import get_input_scaling, set_input_scaling

    model = _tiny_model()
    set_input_scaling(model, np.arange(4.0), np.full(4, 2.0))
    avg = TailAverage(2)
    for shift in (1.0, 2.0, 4.0):  # three "epochs"; the window keeps the last two
        assign_trainable(model, [np.full(v.shape, shift, np.float32) for v in model.trainable_variables])
        avg.add(model)
    assert len(avg) == 2
    for x in avg.mean():
        np.testing.assert_allclose(x, 3.0)
    for x in avg.latest():
        np.testing.assert_allclose(x, 4.0)
    weights = full_weights(model, avg.mean())
    model.set_weights(weights)
    for v in model.trainable_variables:
        np.testing.assert_allclose(v.numpy(), 3.0)
    mean, scale = get_input_scaling(model)  # non-trainable: the input statistics are not averaged
    np.testing.assert_allclose(np.asarray(mean), np.arange(4.0))
    np.testing.assert_allclose(np.asarray(scale), 2.0)
    with pytest.raises(ValueError, match="average_epochs"):
        TailAverage(0)


def _runs_worker(configs: list[dict]) -> list[dict]:
    """One Horovod worker: the one loop for each config in turn, recording the live trainable weights at the end
    of every epoch (the model is caught as the loop builds it), then the saved model's weights."""
    import keras

    import ucluster.model as um
    from ucluster.train import loop
    from ucluster.train.engines import make_engine
    from ucluster.train.trainer import config_from_dict

    build, engine, out = um.build_model, make_engine("horovod", True, 0, 0), []
    for config in configs:
        built, ends = [], []

        def build_and_keep(*args, built=built, **kwargs):
            built.append(build(*args, **kwargs))
            return built[-1]

        um.build_model = build_and_keep
        result = loop.run(config_from_dict(config), engine, track=False,
                          on_epoch=lambda e, m, b=built, ends=ends: ends.append(
                              [v.numpy().copy() for v in b[0].trainable_variables]))
        saved = keras.saving.load_model(result["model_path"], compile=False)
        out.append({"result": result, "ends": ends, "saved": [v.numpy() for v in saved.trainable_variables]})
    um.build_model = build
    return out


cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the worker cannot import this test module


def _assert_mean_of(saved: list, copies: list[list]) -> None:
    expected = [np.mean(np.stack(ws).astype(np.float64), axis=0) for ws in zip(*copies, strict=True)]
    for got, want in zip(saved, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(want, live) for want, live in zip(expected, copies[-1], strict=True)), \
        "the averaged epochs ended on the same weights: the test would not tell the mean from the live weights"


@pytest.fixture(scope="module")
def averaged_runs(tiny_overrides, tmp_path_factory):
    """4 epochs (3 of clustering), deterministic ops, one seed: a plain run, then average_epochs 2 with select
    last and with select best_val, in one worker process."""
    from ucluster.config import load_config
    from ucluster.distributed import HorovodRunner

    out = tmp_path_factory.mktemp("averaging")
    base = {**tiny_overrides, "run.deterministic": True, "train.epochs": 4}
    last = {"train.average_epochs": 2, "train.select": "last"}
    names = ("plain", "last", "best", "part", "resumed")
    configs = [load_config(None, {**base, "run.output_dir": str(out / directory), **extra}) for directory, extra in
               (("plain", {}), ("last", last), ("best", {"train.average_epochs": 2, "train.select": "best_val"}),
                # "last" in two goes: 3 epochs (a finished run), then resumed for the 4th
                ("part", {**last, "train.epochs": 3}), ("part", {**last, "run.resume": True}))]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        runs = HorovodRunner(np=-1).run(_runs_worker, configs=[c.to_dict() for c in configs])
    return dict(zip(names, zip(configs, runs, strict=True), strict=True))


def test_training_follows_the_live_weights(averaged_runs):
    """Averaging changes nothing in training: with 3 clustering epochs and a window of 2 the mean differs from the
    live weights before the last epoch trains, yet the averaged runs' live curves are the plain run's."""
    plain = averaged_runs["plain"][1]["result"]["history"]
    for name in ("last", "best"):
        history = averaged_runs[name][1]["result"]["history"]
        clustering = [h for h in history if "test_cluster_acc" in h]
        assert [h["averaged_epochs"] for h in clustering] == [1.0, 2.0, 2.0]
        # the first clustering epoch averages one copy: the averaged figures are the live ones
        assert clustering[0]["test_cluster_acc"] == pytest.approx(clustering[0]["live_test_cluster_acc"])
        for mine, ref in zip(history, plain, strict=True):
            assert mine["loss"] == pytest.approx(ref["loss"], rel=1e-6), name
            if "test_cluster_acc" in ref:
                assert mine["live_test_cluster_acc"] == pytest.approx(ref["test_cluster_acc"]), name
        np.testing.assert_allclose(averaged_runs[name][1]["ends"][-1][0], averaged_runs["plain"][1]["ends"][-1][0],
                                   rtol=1e-5, atol=1e-6)


def test_the_saved_model_is_the_tail_mean_and_the_checkpoint_keeps_the_window(averaged_runs):
    from ucluster.train.checkpoint import read_average_window

    cfg, run = averaged_runs["last"]
    _assert_mean_of(run["saved"], run["ends"][-2:])
    assert run["result"]["test_cluster_acc"] == run["result"]["history"][-1]["test_cluster_acc"]
    stored = read_average_window(cfg.run.output_dir)  # a resumed run averages the same copies
    assert len(stored) == 2
    for copy, end in zip(stored, run["ends"][-2:], strict=True):
        for a, b in zip(copy, end, strict=True):
            np.testing.assert_array_equal(a, b)


def test_best_val_keeps_the_tail_mean_of_the_selected_epoch(averaged_runs):
    cfg, run = averaged_runs["best"]
    epoch = int(run["result"]["selected_epoch"])
    first = cfg.train.pretrain_epochs
    window = run["ends"][max(first, epoch - 1):epoch + 1]
    if len(window) == 1:  # selected at the first clustering epoch: the mean of one copy
        for got, want in zip(run["saved"], window[0], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    else:
        _assert_mean_of(run["saved"], window)
    best = max((h for h in run["result"]["history"] if "val_cluster_acc" in h), key=lambda h: h["val_cluster_acc"])
    assert best["epoch"] == epoch


def test_a_finished_run_resumed_for_more_epochs_matches_the_uninterrupted_one(averaged_runs):
    """The finished checkpoint keeps the weights training ended on (not the averaged model it handed out) and the
    averaged copies: extending the 3-epoch run by one epoch gives the 4-epoch run's curve and model."""
    straight, resumed = averaged_runs["last"][1], averaged_runs["resumed"][1]
    assert [h["epoch"] for h in resumed["result"]["history"]] == [0, 1, 2, 3]
    for mine, ref in zip(resumed["result"]["history"], straight["result"]["history"], strict=True):
        for key in ("loss", "live_test_cluster_acc", "test_cluster_acc"):
            if key in ref:
                assert mine[key] == pytest.approx(ref[key], rel=1e-5), (mine["epoch"], key)
    for got, want in zip(resumed["saved"], straight["saved"], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
