"""train.balance reaches the TensorFlow step (both TensorFlow engines compile it through StepFunctions): the
clustering figure carries balance * KL(mean assignment || uniform) and the update changes with it."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ucluster.config import ModelConfig
from ucluster.model import balance_loss, build_model, set_centroids
from ucluster.train.engines.horovod_tf import StepFunctions


def _step(balance: float, batch: dict, centroids: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    cfg = ModelConfig(k=4, gap1_channels=4, gap2_channels=4, gap2_heads=2, point_channels=[8, 8], latent_dim=8,
                      head_units=[8], dropout=0.0, n_clusters=3)
    keras.utils.set_random_seed(0)
    model = build_model(cfg, batch["features"].shape[1], batch["features"].shape[2], 4)
    set_centroids(model, centroids)
    optimizer = keras.optimizers.Adam(1e-2)
    optimizer.build(model.trainable_variables)
    fns = StepFunctions(model, optimizer, 2.0, balance=balance)
    dist = fns.predict(batch["features"], batch["mask"])[2].numpy()
    figures = fns.train(batch, alpha=2.0, beta=1.0).numpy()
    return figures, dist, [v.numpy() for v in model.trainable_variables]


def test_balance_term_enters_the_tensorflow_step():
    rng = np.random.default_rng(0)
    n, p, f = 24, 10, 5
    mask = (np.arange(p)[None] < rng.integers(2, p + 1, size=n)[:, None]).astype("float32")
    batch = {"features": rng.normal(size=(n, p, f)).astype("float32") * mask[..., None], "mask": mask,
             "target": rng.integers(0, 4, size=n).astype("int32")}
    centroids = rng.normal(size=(3, 8)).astype("float32")
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    plain, dist, w_plain = _step(0.0, batch, centroids)
    balanced, dist2, w_bal = _step(5.0, batch, centroids)
    np.testing.assert_allclose(dist, dist2)  # same initial model
    kl = float(balance_loss(dist, 2.0))
    assert kl > 1e-4
    assert balanced[2] - plain[2] == pytest.approx(5.0 * kl, rel=1e-3, abs=1e-6)
    assert balanced[1] == pytest.approx(plain[1], rel=1e-5)  # the focal loss is untouched
    assert any(not np.allclose(a, b) for a, b in zip(w_plain, w_bal, strict=True))


def test_clip_norm_bounds_the_step_through_the_loops_optimizer():
    """train.clip_norm reaches the optimizer the loop builds: clipped to 1e-9, Adam's epsilon (1e-7) dominates
    the first update, which shrinks about a hundredfold; unclipped, the same step moves the weights by ~lr."""
    from ucluster.config import TrainConfig
    from ucluster.train.loop import make_optimizer

    rng = np.random.default_rng(1)
    n, p, f = 16, 8, 5
    mask = (np.arange(p)[None] < rng.integers(2, p + 1, size=n)[:, None]).astype("float32")
    batch = {"features": rng.normal(size=(n, p, f)).astype("float32") * mask[..., None], "mask": mask,
             "target": rng.integers(0, 4, size=n).astype("int32")}
    cfg = ModelConfig(k=4, gap1_channels=4, gap2_channels=4, gap2_heads=2, point_channels=[8, 8], latent_dim=8,
                      head_units=[8], dropout=0.0, n_clusters=3)
    moves = {}
    for clip in (0.0, 1e-9):
        keras.utils.set_random_seed(0)
        model = build_model(cfg, p, f, 4)
        before = [v.numpy() for v in model.trainable_variables]
        optimizer = make_optimizer(TrainConfig(lr=1e-2, clip_norm=clip), 1)
        optimizer.build(model.trainable_variables)
        StepFunctions(model, optimizer, 2.0).train(batch, alpha=2.0, beta=1.0)
        moves[clip] = max(float(np.abs(v.numpy() - b).max()) for v, b in zip(model.trainable_variables, before,
                                                                               strict=True))
    assert moves[0.0] == pytest.approx(1e-2, rel=0.2)
    assert moves[1e-9] < moves[0.0] / 20
