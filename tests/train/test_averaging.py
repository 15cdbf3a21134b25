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


def _averaged_worker(config: dict) -> dict:
    """One Horovod worker: the one loop with ``average_epochs`` 2, recording the live trainable weights at the end
    of every epoch (the model is caught as the loop builds it), then the saved model's weights."""
    import keras

    import ucluster.model as um
    from ucluster.train import loop
    from ucluster.train.engines import make_engine
    from ucluster.train.trainer import config_from_dict

    cfg = config_from_dict(config)
    built, ends = [], []
    build = um.build_model

    def build_and_keep(*args, **kwargs):
        built.append(build(*args, **kwargs))
        return built[-1]

    um.build_model = build_and_keep
    engine = make_engine("horovod", True, 0, 0)
    result = loop.run(cfg, engine, track=False,
                      on_epoch=lambda e, m: ends.append([v.numpy().copy() for v in built[0].trainable_variables]))
    saved = keras.saving.load_model(result["model_path"], compile=False)
    return {"result": result, "ends": ends, "saved": [v.numpy() for v in saved.trainable_variables]}


cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the worker cannot import this test module


def test_training_follows_the_live_weights_and_the_saved_model_is_their_tail_mean(trained, tiny_overrides,
                                                                                  tmp_path, monkeypatch):
    """Same seed, deterministic ops: the live curve of the averaged run is the plain run's curve (averaging
    changes nothing in training), and with ``select last`` the saved model is the mean of the last two epochs."""
    from ucluster.config import load_config
    from ucluster.distributed import HorovodRunner

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = load_config(None, {**tiny_overrides, "run.output_dir": str(tmp_path / "avg"), "run.deterministic": True,
                             "train.average_epochs": 2, "train.select": "last"})
    out = HorovodRunner(np=-1).run(_averaged_worker, config=cfg.to_dict())
    history = out["result"]["history"]
    reference = trained.result["history"]
    clustering = [h for h in history if "test_cluster_acc" in h]
    assert [h["averaged_epochs"] for h in clustering] == [1.0, 2.0]
    for mine, ref in zip(history, reference, strict=True):
        assert mine["loss"] == pytest.approx(ref["loss"], rel=1e-6)
        if "test_cluster_acc" in ref:
            assert mine["live_test_cluster_acc"] == pytest.approx(ref["test_cluster_acc"])
    # the first clustering epoch averages one copy: the averaged figures are the live ones
    assert clustering[0]["test_cluster_acc"] == pytest.approx(clustering[0]["live_test_cluster_acc"])
    last_two = out["ends"][-2:]
    expected = [(a.astype(np.float64) + b) / 2 for a, b in zip(*last_two, strict=True)]
    changed = False
    for saved, want, live in zip(out["saved"], expected, last_two[1], strict=True):
        np.testing.assert_allclose(saved, want, rtol=1e-5, atol=1e-6)
        changed |= not np.allclose(want, live)
    assert changed, "the last two epochs ended on the same weights: the test would not tell mean from live"
    assert out["result"]["test_cluster_acc"] == clustering[-1]["test_cluster_acc"]
