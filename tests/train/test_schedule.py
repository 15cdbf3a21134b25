"""The per-epoch schedules: lr decay, the clustering phase's lr factor, the restart and alpha."""

import pytest

from ucluster.config import Config, ConfigError, TrainConfig, validate
from ucluster.train import schedule


def test_decay_floor_and_worker_scaling():
    t = TrainConfig(lr=1e-3, lr_decay_every=2, lr_decay_factor=0.5, lr_min=2e-4, pretrain_epochs=10)
    assert [schedule.learning_rate(t, e) for e in range(6)] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4])
    assert schedule.learning_rate(t, 9) == pytest.approx(2e-4)  # floor
    assert schedule.learning_rate(t, 0, n_workers=4) == pytest.approx(4e-3)
    t.scale_lr = False
    assert schedule.learning_rate(t, 0, n_workers=4) == pytest.approx(1e-3)


def test_cluster_lr_factor_applies_to_the_clustering_phase_only():
    t = TrainConfig(lr=1e-3, pretrain_epochs=3, cluster_lr_factor=0.2)
    lrs = [schedule.learning_rate(t, e, n_workers=2) for e in range(6)]
    assert lrs == pytest.approx([2e-3, 2e-3, 2e-3, 4e-4, 4e-4, 4e-4])


def test_restart_starts_the_decay_again_at_the_clustering_phase():
    t = TrainConfig(lr=1e-3, lr_decay_every=1, lr_decay_factor=0.5, lr_min=1e-6, pretrain_epochs=2,
                    lr_restart=True, cluster_lr_factor=0.5)
    assert [schedule.learning_rate(t, e) for e in range(4)] == pytest.approx([1e-3, 5e-4, 5e-4, 2.5e-4])


def test_alpha_is_zero_in_pretraining_then_grows():
    t = TrainConfig(pretrain_epochs=2, alpha_start=10.0, alpha_step=2.0)
    assert [schedule.alpha(t, e) for e in range(5)] == [0.0, 0.0, 10.0, 12.0, 14.0]


def test_non_positive_cluster_lr_factor_is_refused():
    cfg = Config()
    cfg.train.cluster_lr_factor = 0.0
    with pytest.raises(ConfigError, match="train.cluster_lr_factor"):
        validate(cfg)
