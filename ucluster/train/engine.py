"""What the one training loop (:mod:`ucluster.train.loop`) needs from an engine, and the loss they all share.

An engine owns the framework: where the variables live (TensorFlow variables averaged by Horovod, an explicit
JAX state on one device, ...), the compiled step, the forward pass and the collectives across workers. The loop
owns everything else (phases, schedules, k-means initialisation, evaluation, history, checkpoints, tracking), so
that a figure measured with one engine is the figure of the other.

Variables move between the engine and the Keras model only through :meth:`Engine.pull` (engine -> Keras
variables, before the loop reads or saves them) and :meth:`Engine.push` (Keras variables -> engine, taken from
rank 0 on every worker, after the loop changed them: restored checkpoint, centroids, input statistics).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from keras import ops

from ucluster.model.losses import balance_loss, deep_kmeans_loss, focal_loss, self_label_loss

# Per-step figures every engine returns, in this order: summed by the loop over an epoch, then allreduced.
STEP_FIGURES = ("loss", "focal_loss", "cluster_loss", "correct")


def ucluster_loss(outputs: dict, target: Any, alpha: Any, beta: Any, gamma: float, kernel: Any = None,
                  balance: float = 0.0, cluster_target: Any = None) -> tuple:
    """(total loss, figures (4,)) of one batch: mean focal loss + beta * (mean deep k-means loss + balance *
    :func:`balance_loss`), and the number of correctly classified jets; written once in keras.ops for every
    engine. The clustering figure includes the balance term.

    With ``cluster_target`` (B,) (``train.cluster_objective`` self_label: a cluster per jet, -1 for none) the
    clustering term is :func:`self_label_loss` averaged over the labelled jets instead of deep k-means.

    A model with the self-supervised term (``model.ssl_weight``) returns, in training, two views of each jet
    stacked along the batch and the term per jet (``ssl_loss``, already weighted): both views are classified
    and clustered, the term is added to the loss, and the correct jets are counted on the first view.
    """
    views = "ssl_loss" in outputs
    logits = outputs["logits"]
    labels = ops.concatenate([target, target], axis=0) if views else target
    focal = ops.mean(focal_loss(labels, logits, gamma, kernel))
    if cluster_target is None:
        clus = ops.mean(deep_kmeans_loss(outputs["distances"], alpha))
    else:
        if views:
            cluster_target = ops.concatenate([cluster_target, cluster_target], axis=0)
        known = ops.sum(ops.cast(ops.cast(cluster_target, "int32") >= 0, "float32"))
        clus = ops.sum(self_label_loss(outputs["distances"], alpha, cluster_target)) / ops.maximum(known, 1.0)
    if balance:
        clus = clus + balance * balance_loss(outputs["distances"], alpha)
    loss = focal + beta * clus
    if views:
        loss = loss + ops.mean(outputs["ssl_loss"])
        logits = ops.split(logits, 2, axis=0)[0]
    pred = ops.argmax(logits, axis=-1)
    correct = ops.sum(ops.cast(ops.equal(ops.cast(pred, "int32"), ops.cast(target, "int32")), "float32"))
    return loss, ops.stack([loss, focal, clus, correct])


class Engine(Protocol):
    """The step, the collectives and device placement; nothing about phases or schedules.

    Optional: ``replicas`` (data-parallel devices inside this worker, 1 when absent: the loop then feeds
    ``replicas * train.batch_size`` jets per step and scales the lr by ``size * replicas``) and
    ``put(batch) -> batch`` (moves a batch to the devices; the loop calls it in the loader's prefetch thread).
    """

    name: str
    rank: int
    size: int

    def setup(self, model, optimizer, gamma: float, kernel: np.ndarray | None, balance: float = 0.0) -> None:
        """Compile the step and forward pass for this model/optimizer (``gamma``, ``kernel`` and ``balance`` of
        :func:`ucluster_loss` compiled in); adopt rank 0's variables everywhere."""

    def step(self, batch: dict, alpha: float, beta: float) -> Any:
        """One optimisation step on this worker's batch (gradients averaged across workers inside; the batch's
        ``cluster_target``, when it has one, goes to :func:`ucluster_loss`); returns the
        (4,) :data:`STEP_FIGURES` of the local batch, possibly still on the device (the loop sums them)."""

    def predict(self, features: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(logits, latent, distances) of a batch, as numpy arrays, with the current weights."""

    def set_lr(self, lr: float) -> None: ...

    def pull(self) -> None:
        """Write the engine's current weights and optimizer state into the Keras variables."""

    def push(self) -> None:
        """Take the Keras variables of rank 0 as the engine's weights and optimizer state on every worker."""

    def allreduce_sum(self, values: np.ndarray) -> np.ndarray: ...

    def allgather(self, values: np.ndarray) -> np.ndarray:
        """Concatenation along axis 0 of every worker's array (in rank order)."""

    def allgather_object(self, obj: Any) -> list: ...

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every worker."""


class SingleProcessCollectives:
    """Collectives of a one-worker engine: identities."""

    rank, size = 0, 1

    def allreduce_sum(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64)

    def allgather(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values)

    def allgather_object(self, obj: Any) -> list:
        return [obj]

    def broadcast_object(self, obj: Any) -> Any:
        return obj
