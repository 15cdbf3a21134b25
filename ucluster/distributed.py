"""HorovodRunner-style launcher: the same call trains on the driver's cores or on Spark executors.

``HorovodRunner(np=N).run(fn, **kwargs)`` follows Databricks' HorovodRunner: ``np < 0`` starts |np| local
processes on the driver (Gloo), ``np > 0`` starts np Spark tasks through ``horovod.spark.run``. It returns
rank 0's return value.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


class LaunchError(RuntimeError):
    """The workers could not be started (bad np, not enough slots)."""


def init_horovod():
    """``hvd.init()`` for a worker, after removing the malformed settings that ``horovod.runner.run`` exports.

    Horovod 0.28.1's function launcher sets HOROVOD_CYCLE_TIME and HOROVOD_CACHE_CAPACITY to the string
    "(None,)" (a stray comma in its defaults). Measured here: with those values the worker's memory grew by
    about 1 MB per training step (30 MB an epoch in a small run), even on one worker; without them it stays
    flat. Dropping them restores Horovod's defaults.
    """
    import horovod.tensorflow as hvd

    for key in ("HOROVOD_CYCLE_TIME", "HOROVOD_CACHE_CAPACITY"):
        if os.environ.get(key, "").startswith("("):
            del os.environ[key]
    hvd.init()
    return hvd


def local_slots() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class HorovodRunner:
    def __init__(self, np: int, spark=None, start_timeout: int = 120):
        if not isinstance(np, int) or np == 0:
            raise LaunchError(f"np must be a non-zero integer (< 0: local processes, > 0: Spark tasks), got {np!r}")
        self.np = np
        self.spark = spark
        self.start_timeout = start_timeout

    @property
    def num_workers(self) -> int:
        return abs(self.np)

    def check_slots(self) -> None:
        """Fail before launching when the workers cannot all run at once (Horovod would wait forever)."""
        if self.np < 0:
            slots = local_slots()
            if -self.np > slots:
                raise LaunchError(f"np={self.np} asks for {-self.np} local processes but this machine has {slots} "
                                  "CPU slots")
        else:
            slots = self._spark().sparkContext.defaultParallelism
            if self.np > slots:
                raise LaunchError(f"np={self.np} asks for {self.np} Spark tasks but the cluster has {slots} task slots")

    def _spark(self):
        if self.spark is None:
            from ucluster.spark import get_spark

            self.spark = get_spark("ucluster-train")
        return self.spark

    def run(self, main: Callable[..., Any], **kwargs: Any) -> Any:
        self.check_slots()
        if self.np < 0:
            from horovod.runner import run as horovod_run

            results = horovod_run(main, kwargs=kwargs, num_proc=-self.np, hosts=f"localhost:{-self.np}", use_gloo=True,
                                  start_timeout=self.start_timeout, verbose=0)
        else:
            import horovod.spark

            sc = self._spark().sparkContext
            sc.setJobDescription(f"ucluster: Horovod training on {self.np} Spark task(s)")
            results = horovod.spark.run(main, kwargs=kwargs, num_proc=self.np, start_timeout=self.start_timeout,
                                        use_gloo=True, verbose=0)
        return results[0]
