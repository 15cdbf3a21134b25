"""TensorFlow + ``tf.distribute.MultiWorkerMirroredStrategy``: the engine for clusters without Horovod.

The Keras model and optimizer stay outside the strategy's scope (plain variables, the same compiled step as the
Horovod engine): only the collectives run in the strategy's replica context. The gradients are summed over the
workers with the strategy's all-reduce and divided by the number of workers, the same mean Horovod's tape takes,
so the loop's lr x workers scaling means the same on both engines. Rank 0's variables reach the others with a
sum all-reduce in which every other rank contributes zeros (exact in floating point). Objects travel as
pickled bytes through a padded all-gather.

The worker's cluster comes from ``TF_CONFIG`` (set by :class:`ucluster.distributed.TFDistributeRunner` before
TensorFlow starts); without it the engine is a single worker.
"""

from __future__ import annotations

import json
import os
import pickle
from typing import Any

import numpy as np

from ucluster.train.engines.horovod_tf import KerasVariablesEngine, StepFunctions


def cluster_from_env() -> tuple[int, int]:
    """(rank, size) of this worker according to ``TF_CONFIG``; (0, 1) when it is absent."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0, 1
    try:
        conf = json.loads(raw)
        workers = conf["cluster"]["worker"]
        rank = int(conf["task"]["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"TF_CONFIG is not a worker cluster description ({exc})") from None
    if not 0 <= rank < len(workers):
        raise RuntimeError(f"TF_CONFIG: task index {rank} outside the {len(workers)} workers")
    return rank, len(workers)


class TFDistributeEngine(KerasVariablesEngine):
    name = "tf_distribute"

    def __init__(self, deterministic: bool = False, threads: int = 0):
        import tensorflow as tf

        if deterministic:
            tf.config.experimental.enable_op_determinism()
        self.rank, self.size = cluster_from_env()
        local = int(os.environ.get("UCLUSTER_LOCAL_WORKERS", "1") or 1)
        threads = threads or max(1, (os.cpu_count() or 1) // max(1, local))
        # Before the strategy: it starts the TensorFlow runtime, after which thread counts are fixed.
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
        self.strategy = None
        if self.size > 1:
            options = tf.distribute.experimental.CommunicationOptions(
                implementation=tf.distribute.experimental.CommunicationImplementation.RING)
            self.strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
            if self.strategy.num_replicas_in_sync != self.size:
                raise RuntimeError(f"tf.distribute sees {self.strategy.num_replicas_in_sync} replicas, TF_CONFIG "
                                   f"lists {self.size} workers (one CPU replica per worker expected)")
        self.fns: StepFunctions | None = None

    # ---- collectives ------------------------------------------------------------------------------------
    def _sum(self, tensors: list) -> list:
        """Sum over the workers of a list of tensors (inside a tf.function or eagerly)."""
        import tensorflow as tf

        def replica(*values):
            # Copies made in the replica's device scope: inside a tf.function the inputs carry no device, and
            # the all-reduce needs one to know where the result goes.
            local = [tf.identity(v) for v in values]
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, local)

        out = self.strategy.run(replica, args=tuple(tensors))
        return [self.strategy.experimental_local_results(t)[0] for t in out]

    def _mean_gradients(self, grads: list) -> list:
        """Mean over the workers; variables the loss does not reach (None gradient) stay None."""
        present = [i for i, g in enumerate(grads) if g is not None]
        summed = self._sum([grads[i] for i in present])
        out = list(grads)
        for i, g in zip(present, summed, strict=True):
            out[i] = g / self.size
        return out

    def setup(self, model, optimizer, gamma: float, kernel: np.ndarray | None, balance: float = 0.0) -> None:
        from ucluster.model import set_worker_mean

        self.model, self.optimizer = model, optimizer
        set_worker_mean(model, (lambda x: self._sum([x])[0] / self.size) if self.size > 1 else None)
        average = self._mean_gradients if self.size > 1 else None
        self.fns = StepFunctions(model, optimizer, gamma, target_kernel=kernel, average=average, balance=balance)
        self.push()

    def push(self) -> None:
        """Rank 0's model and optimizer variables on every worker: one sum all-reduce per dtype."""
        if self.size == 1:
            return
        variables = list(self.model.variables) + list(self.optimizer.variables)
        by_dtype: dict[str, list] = {}
        for v in variables:
            by_dtype.setdefault(np.dtype(v.dtype).name if v.dtype != "bool" else "bool", []).append(v)
        for group in by_dtype.values():
            values = [np.asarray(v.numpy()) for v in group]
            flat = np.concatenate([x.ravel() for x in values]) if values else np.zeros(0)
            wire = flat.astype(np.int64) if flat.dtype.kind in "biu" else flat
            mine = wire if self.rank == 0 else np.zeros_like(wire)
            root = self._sum_numpy(mine).astype(flat.dtype)
            offset = 0
            for v, x in zip(group, values, strict=True):
                v.assign(root[offset:offset + x.size].reshape(x.shape))
                offset += x.size

    def _sum_numpy(self, values: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        return self._sum([tf.constant(values)])[0].numpy()

    def allreduce_sum(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        return values if self.size == 1 else self._sum_numpy(values)

    def allgather(self, values: np.ndarray) -> np.ndarray:
        """Rows of every worker in rank order; shards may hold different numbers of rows."""
        values = np.asarray(values)
        if self.size == 1:
            return values
        counts = np.zeros(self.size, np.int64)
        counts[self.rank] = len(values)
        counts = self._sum_numpy(counts)
        # Each worker writes its rows at its offset of a zero buffer: the sum is the concatenation, exactly.
        wire = np.float64 if values.dtype.kind == "f" else np.int64
        buf = np.zeros((int(counts.sum()), *values.shape[1:]), wire)
        start = int(counts[:self.rank].sum())
        buf[start:start + len(values)] = values
        return self._sum_numpy(buf).astype(values.dtype)

    def allgather_object(self, obj: Any) -> list:
        if self.size == 1:
            return [obj]
        data = np.frombuffer(pickle.dumps(obj), np.uint8)
        counts = np.zeros(self.size, np.int64)
        counts[self.rank] = len(data)
        counts = self._sum_numpy(counts)
        gathered = self.allgather(data.astype(np.int32)).astype(np.uint8)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        return [pickle.loads(gathered[bounds[r]:bounds[r + 1]].tobytes()) for r in range(self.size)]

    def broadcast_object(self, obj: Any) -> Any:
        return obj if self.size == 1 else self.allgather_object(obj if self.rank == 0 else None)[0]
