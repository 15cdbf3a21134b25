"""UCluster on one accelerator with ``KERAS_BACKEND=jax``: the Horovod trainer's phases without TensorFlow.

The production path is :mod:`ucluster.train.trainer` (TensorFlow + Horovod, launched from Spark). GPU machines
that have JAX but no TensorFlow use this one for quality studies: the same model (:func:`build_model`), losses
(:mod:`ucluster.model.losses`, through :mod:`ucluster.train.jax_step`), loader (:class:`JetStream`), schedules
(:mod:`ucluster.train.schedule`), k-means initialisation and metrics (:mod:`ucluster.train.metrics`), so a figure
measured here is the project's own, only faster. One process, one device; no MLflow (the caller stores the
returned history).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ucluster.config import Config
from ucluster.data.loader import JetStream, prefetch
from ucluster.train import metrics as M
from ucluster.train import schedule
from ucluster.train.trainer import TrainingError, fit_centroids, n_classes, split_metrics, validation_stream

_STEP_KEYS = ("features", "mask", "target")


def _make_predict(model) -> Callable:
    import jax

    def predict(trainable: list, non_trainable: list, features: Any, mask: Any) -> tuple[Any, Any, Any]:
        out, _ = model.stateless_call(trainable, non_trainable, {"features": features, "mask": mask},
                                      training=False)
        return out["logits"], out["latent"], out["distances"]

    return jax.jit(predict)


def train_single_device(cfg: Config, on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Pretrain, initialise the centroids with k-means, then train classification + deep k-means.

    Returns ``{"history": [per-epoch metrics], **final metrics, "purity": {...}, "efficiency": {...}}`` with the
    trainer's metric names (``test_class_acc``, ``test_cluster_acc``, ``test_nmi``, ``test_ari``,
    ``init_test_cluster_acc``...). ``on_epoch(epoch, metrics)`` is called after every epoch.
    """
    import jax
    import keras

    from ucluster.model import build_model, set_centroids
    from ucluster.model.losses import ordinal_kernel
    from ucluster.train.jax_step import init_state, make_train_step, write_state_back

    if keras.backend.backend() != "jax":
        raise TrainingError(f"the single-device trainer needs KERAS_BACKEND=jax, not {keras.backend.backend()}")
    train, test, val = JetStream(cfg, "train"), JetStream(cfg, "test"), validation_stream(cfg)
    B = cfg.train.batch_size
    steps = train.selected_rows() // B
    if cfg.data.max_train_jets:
        steps = min(steps, cfg.data.max_train_jets // B)
    if cfg.train.steps_per_epoch:
        steps = min(steps, cfg.train.steps_per_epoch)
    if steps < 1:
        raise TrainingError(f"{cfg.data.path}: fewer than {B} selected training jets")

    keras.utils.set_random_seed(cfg.train.seed)
    model = build_model(cfg.model, cfg.data.max_particles, train.meta.n_features, n_classes(cfg))
    optimizer = keras.optimizers.Adam(learning_rate=schedule.learning_rate(cfg.train, 0, 1))
    kernel = None
    if cfg.model.target == "mass_bins" and cfg.model.bin_smoothing > 0:
        kernel = ordinal_kernel(cfg.model.mass_bins, cfg.model.bin_smoothing)
    pretrain_step = make_train_step(model, optimizer, 0.0, cfg.train.gamma, kernel)
    cluster_step = make_train_step(model, optimizer, cfg.train.beta, cfg.train.gamma, kernel)
    predict = _make_predict(model)
    state = init_state(model, optimizer)
    lr_index = next(i for i, v in enumerate(optimizer.variables) if v is optimizer._learning_rate)  # noqa: SLF001

    def evaluate(with_clusters: bool, stream: JetStream = test, prefix: str = "test") -> dict:
        k, c = cfg.model.n_clusters, len(cfg.data.classes)
        table, correct, total = np.zeros((k, c)), 0.0, 0.0
        for batch in prefetch(stream.eval_batches(B, cfg.data.max_eval_jets)):
            logits, _, dist = predict(state[0], state[1], batch["features"], batch["mask"])
            logits, dist = np.asarray(logits), np.asarray(dist)
            valid = batch["valid"]
            correct += float(((logits.argmax(-1) == batch["target"]) * valid).sum())
            total += float(valid.sum())
            table += M.contingency(dist.argmin(-1), batch["label"], k, c, valid)
        return {**split_metrics(prefix, correct, total, table, with_clusters), "_table": table}

    def init_centroids() -> dict:
        nonlocal state
        parts = []
        for batch in train.eval_batches(B, cfg.train.kmeans_sample):
            _, latent, _ = predict(state[0], state[1], batch["features"], batch["mask"])
            parts.append(np.asarray(latent)[batch["valid"] > 0])
        centers = fit_centroids(cfg, np.concatenate(parts))
        write_state_back(model, optimizer, state)
        set_centroids(model, centers)
        state = init_state(model, optimizer)
        return {f"init_{k}": v for k, v in evaluate(True).items() if k not in ("test_class_acc", "_table")}

    history: list[dict] = []
    init: dict = {}
    table = None
    for epoch in range(cfg.train.epochs):
        clustering = schedule.is_clustering(cfg.train, epoch)
        if clustering and not init:
            init = init_centroids()
        lr = schedule.learning_rate(cfg.train, epoch, 1)
        alpha = schedule.alpha(cfg.train, epoch)
        trainable, non_trainable, opt_vars = state
        opt_vars = list(opt_vars)
        opt_vars[lr_index] = jax.numpy.asarray(lr, opt_vars[lr_index].dtype)
        state = (trainable, non_trainable, opt_vars)
        step = cluster_step if clustering else pretrain_step
        sums = None
        t0 = time.perf_counter()
        for batch in prefetch(train.batches(B, steps, epoch, cfg.train.seed)):
            state, m = step(state, {k: batch[k] for k in _STEP_KEYS}, alpha)
            vec = jax.numpy.stack([m["loss"], m["focal"], m["kmeans"], m["accuracy"]])
            sums = vec if sums is None else sums + vec
        sums = np.asarray(sums, dtype=np.float64)
        seconds = time.perf_counter() - t0
        metrics = {"epoch": epoch, "loss": sums[0] / steps, "focal_loss": sums[1] / steps,
                   "cluster_loss": sums[2] / steps, "train_class_acc": sums[3] / steps, "lr": lr, "alpha": alpha,
                   "jets_per_s": steps * B / max(seconds, 1e-9), "epoch_seconds": seconds}
        if not np.isfinite(sums[0]):
            raise TrainingError(f"epoch {epoch + 1}: the loss is not finite ({sums[0]})")
        ev = evaluate(bool(init))
        table = ev.pop("_table", table)
        metrics.update(ev)
        if val is not None:
            ev_val = evaluate(bool(init), val, "val")
            ev_val.pop("_table", None)
            metrics.update(ev_val)
        history.append({k: float(v) for k, v in metrics.items()})
        if on_epoch:
            on_epoch(epoch, history[-1])
    if not init:  # pretraining only: the k-means initialisation is the clustering
        init = init_centroids()
        ev = evaluate(True)
        table = ev.pop("_table")
        history.append({"epoch": float(cfg.train.epochs), **{k: float(v) for k, v in ev.items()}})
    write_state_back(model, optimizer, state)
    names = list(cfg.data.classes)
    purity, efficiency = M.purity_efficiency(table)
    final = {k: v for k, v in history[-1].items() if k.startswith("test_")}
    clustered = [h["test_cluster_acc"] for h in history if "test_cluster_acc" in h]
    # One epoch's figure moves by several points; the mean of the last four is the steadier summary.
    final["last4_mean_test_cluster_acc"] = float(np.mean(clustered[-4:])) if clustered else math.nan
    return {"history": history, **init, **final, "model": model,
            "purity": dict(zip(names, purity.tolist(), strict=True)),
            "efficiency": dict(zip(names, efficiency.tolist(), strict=True))}
