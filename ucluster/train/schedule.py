"""Per-epoch schedules: pure functions of the epoch, so a resumed run recomputes them exactly."""

from __future__ import annotations

from ucluster.config import TrainConfig


def is_clustering(cfg: TrainConfig, epoch: int) -> bool:
    """Epochs are 0-based; the first ``pretrain_epochs`` train the classifier only."""
    return epoch >= cfg.pretrain_epochs


def learning_rate(cfg: TrainConfig, epoch: int, n_workers: int = 1) -> float:
    """lr halved every ``lr_decay_every`` epochs down to ``lr_min``, times ``cluster_lr_factor`` in the clustering
    phase and the worker count (``scale_lr``).

    With ``lr_restart`` the decay starts again when the clustering phase begins, so the deep k-means phase
    does not start at the floor of the schedule.
    """
    start = cfg.pretrain_epochs if cfg.lr_restart and is_clustering(cfg, epoch) else 0
    steps = (epoch - start) // cfg.lr_decay_every
    lr = max(cfg.lr * cfg.lr_decay_factor**steps, cfg.lr_min)
    if is_clustering(cfg, epoch):
        lr *= cfg.cluster_lr_factor
    return lr * (n_workers if cfg.scale_lr else 1)


def alpha(cfg: TrainConfig, epoch: int) -> float:
    """Inverse temperature of the soft cluster assignment: alpha_start, growing by alpha_step per epoch."""
    if not is_clustering(cfg, epoch):
        return 0.0
    return cfg.alpha_start + cfg.alpha_step * (epoch - cfg.pretrain_epochs)
