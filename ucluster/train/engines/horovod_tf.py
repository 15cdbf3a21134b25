"""TensorFlow + ``horovod.tensorflow``: gradients averaged by ``DistributedGradientTape``, rank 0's variables
broadcast, metrics allreduced. Horovod's Keras integration is Keras-2 only, so the backing ``tf.Variable``s
(``v.value``) are what Horovod sees. Every Horovod call of the training lives here (and in
:mod:`ucluster.distributed`, the launcher)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ucluster.train.engine import ucluster_loss


class StepFunctions:
    """Compiled train and predict steps for one model/optimizer pair (the engine's, and the tests')."""

    def __init__(self, model, optimizer, gamma: float, hvd=None, target_kernel: np.ndarray | None = None,
                 average: Callable[[list], list] | None = None, balance: float = 0.0):
        """``hvd``: average gradients with Horovod's tape; ``average``: any other cross-worker mean of the
        gradient list (the tf.distribute engine's), applied between ``tape.gradient`` and the update."""
        import tensorflow as tf

        self.model, self.optimizer = model, optimizer
        tf_vars = [v.value for v in model.trainable_variables]
        kernel = None if target_kernel is None else tf.constant(target_kernel)

        @tf.function
        def train_step(features, mask, target, alpha, beta, cluster_target=None):
            with tf.GradientTape() as tape:
                out = model({"features": features, "mask": mask}, training=True)
                loss, figures = ucluster_loss(out, target, alpha, beta, gamma, kernel, balance, cluster_target)
            if hvd is not None:
                tape = hvd.DistributedGradientTape(tape)
            grads = tape.gradient(loss, tf_vars)
            if average is not None:
                grads = average(grads)
            optimizer.apply(grads, model.trainable_variables)
            return figures

        @tf.function
        def predict(features, mask):
            out = model({"features": features, "mask": mask}, training=False)
            return out["logits"], out["latent"], out["distances"]

        self.train_step, self.predict = train_step, predict

    def train(self, batch: dict, alpha: float, beta: float):
        import tensorflow as tf

        # a batch carries cluster_target under train.cluster_objective self_label (traced once each way)
        return self.train_step(batch["features"], batch["mask"], batch["target"],
                               tf.constant(alpha, tf.float32), tf.constant(beta, tf.float32),
                               batch.get("cluster_target"))


class KerasVariablesEngine:
    """What every TensorFlow engine shares: the compiled :class:`StepFunctions` act on the Keras variables
    themselves, so there is nothing to pull; subclasses set ``fns`` in ``setup`` and bring the collectives."""

    fns: StepFunctions | None
    optimizer: Any

    def step(self, batch: dict, alpha: float, beta: float):
        return self.fns.train(batch, alpha, beta)

    def predict(self, features: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(t.numpy() for t in self.fns.predict(features, mask))

    def set_lr(self, lr: float) -> None:
        self.optimizer.learning_rate.assign(lr)

    def pull(self) -> None:  # the Keras variables are the engine's variables
        pass


class HorovodTFEngine(KerasVariablesEngine):
    name = "horovod"

    def __init__(self, deterministic: bool = False, threads: int = 0):
        import tensorflow as tf

        from ucluster.distributed import init_horovod

        if deterministic:
            tf.config.experimental.enable_op_determinism()
        self.hvd = init_horovod()
        threads = threads or max(1, (os.cpu_count() or 1) // self.hvd.local_size())
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
        self.rank, self.size = self.hvd.rank(), self.hvd.size()
        self.fns: StepFunctions | None = None

    def setup(self, model, optimizer, gamma: float, kernel: np.ndarray | None, balance: float = 0.0) -> None:
        from ucluster.model import set_worker_mean

        self.model, self.optimizer = model, optimizer
        hvd = self.hvd
        set_worker_mean(model, (lambda x: hvd.allreduce(x, op=hvd.Average)) if self.size > 1 else None)
        self.fns = StepFunctions(model, optimizer, gamma, self.hvd if self.size > 1 else None, kernel,
                                 balance=balance)
        self.push()

    def push(self) -> None:
        if self.size > 1:
            self.hvd.broadcast_variables([v.value for v in self.model.variables], root_rank=0)
            self.hvd.broadcast_variables([v.value for v in self.optimizer.variables], root_rank=0)

    def allreduce_sum(self, values: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        if self.size == 1:
            return np.asarray(values, dtype=np.float64)
        return self.hvd.allreduce(tf.constant(np.asarray(values, dtype=np.float64)), op=self.hvd.Sum).numpy()

    def allgather(self, values: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        if self.size == 1:
            return np.asarray(values)
        return self.hvd.allgather(tf.constant(np.asarray(values))).numpy()

    def allgather_object(self, obj: Any) -> list:
        return [obj] if self.size == 1 else self.hvd.allgather_object(obj)

    def broadcast_object(self, obj: Any) -> Any:
        return obj if self.size == 1 else self.hvd.broadcast_object(obj, root_rank=0)
