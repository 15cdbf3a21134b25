"""HorovodRunner-style launcher: the same call trains on the driver's cores or on Spark executors.

``HorovodRunner(np=N).run(fn, **kwargs)`` follows Databricks' HorovodRunner: ``np < 0`` starts |np| local
processes on the driver (Gloo), ``np > 0`` starts np Spark tasks through ``horovod.spark.run``. It returns
rank 0's return value. :class:`TFDistributeRunner` has the same shape for the tf_distribute engine (no
Horovod): local worker processes, or np Spark tasks in one barrier stage, each with its own ``TF_CONFIG``.
``run.engine: auto`` is resolved here (:func:`resolve_engine`).
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


# --------------------------------------------------------------------------------------------------------
# tf.distribute: the same run/num_workers/check_slots shape, without Horovod
# --------------------------------------------------------------------------------------------------------
class WorkerLost(RuntimeError):
    """A tf.distribute worker process ended abnormally; the message names it (parsed by ``faults.diagnose``)."""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the worker gets SIGKILL when its launcher dies (a Spark task killed by a failed barrier stage)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _forward(stream, rank: int, kind: str) -> None:
    """Copy a worker's output into this process's sys.stdout/stderr, prefixed like Horovod's launcher does,
    so that the job's console filter keeps rank 0's stdout and sends the rest to the log only."""
    import sys

    for line in iter(stream.readline, ""):
        target = sys.stdout if kind == "stdout" else sys.stderr
        target.write(f"[{rank}]<{kind}>:{line}")
    stream.close()


def _start_worker(workdir: str, rank: int, cluster: list[str], local_workers: int):
    """A fresh Python process for worker ``rank``: TF_CONFIG is in its environment before TensorFlow loads
    (TensorFlow reads it once, when the runtime starts), so a reused Spark Python worker never matters."""
    import json
    import subprocess
    import sys
    import threading

    env = dict(os.environ)
    env["TF_CONFIG"] = json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": rank}})
    env["UCLUSTER_LOCAL_WORKERS"] = str(local_workers)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = subprocess.Popen([sys.executable, "-c", "from ucluster.distributed import tf_worker_main; tf_worker_main()",
                             workdir, str(rank)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            bufsize=1, preexec_fn=_die_with_parent)
    threads = [threading.Thread(target=_forward, args=(s, rank, k), daemon=True)
               for s, k in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))]
    for t in threads:
        t.start()
    return proc, threads


def _lost(rank: int, code: int, workdir: str) -> WorkerLost:
    detail = ""
    err = os.path.join(workdir, f"error-{rank}.txt")
    if os.path.exists(err):
        with open(err, encoding="utf-8") as fh:
            detail = f": {fh.read().strip()}"
    return WorkerLost(f"tf_distribute worker {rank} ended with exit code {code}{detail}")


def _read_result(workdir: str, rank: int) -> Any:
    import cloudpickle

    with open(os.path.join(workdir, f"result-{rank}.pkl"), "rb") as fh:
        return cloudpickle.load(fh)


def tf_worker_main() -> None:
    """Body of a worker process: run the pickled function, leave its result (or one line of error) in files."""
    import sys
    import traceback

    import cloudpickle

    workdir, rank = sys.argv[1], int(sys.argv[2])
    with open(os.path.join(workdir, "payload.pkl"), "rb") as fh:
        main, kwargs = cloudpickle.load(fh)
    try:
        result = main(**kwargs)
    except BaseException as exc:
        traceback.print_exc()
        with open(os.path.join(workdir, f"error-{rank}.txt"), "w", encoding="utf-8") as fh:
            fh.write(f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
        sys.stderr.flush()
        os._exit(1)  # skip TensorFlow's teardown, which can hang while a peer is gone
    tmp = os.path.join(workdir, f".result-{rank}.tmp")
    with open(tmp, "wb") as fh:
        cloudpickle.dump(result, fh)
    os.replace(tmp, os.path.join(workdir, f"result-{rank}.pkl"))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _run_local(workdir: str, n: int, poll_s: float = 0.1) -> Any:
    """|np| worker processes on this machine; the first one to fail stops the others."""
    import time

    cluster = [f"localhost:{_free_port()}" for _ in range(n)]
    procs = [_start_worker(workdir, r, cluster, n) for r in range(n)]
    try:
        while True:
            codes = [p.poll() for p, _ in procs]
            bad = [(r, c) for r, c in enumerate(codes) if c not in (None, 0)]
            if bad:
                # The cause is the worker that died; peers then fail on their collectives. Seen in the same
                # poll, a worker ended by a signal is the likelier cause than one that exited with an error.
                rank, code = min(bad, key=lambda rc: (rc[1] >= 0, rc[0]))
                raise _lost(rank, code, workdir)
            if all(c == 0 for c in codes):
                break
            time.sleep(poll_s)
    finally:
        for p, _ in procs:
            if p.poll() is None:
                p.kill()
        for p, threads in procs:
            p.wait()
            for t in threads:
                t.join(timeout=5)
    return _read_result(workdir, 0)


def _barrier_task(payload: bytes):
    """The function of each Spark barrier task: agree on the cluster with the other tasks, run one worker."""

    def task(_):
        import tempfile

        from pyspark import BarrierTaskContext

        ctx = BarrierTaskContext.get()
        rank = ctx.partitionId()
        if ctx.attemptNumber() > 0:
            # Spark re-ran the whole barrier stage after a lost task (spark.task.maxFailures > 1): that would
            # train again from the start. Restarts belong to the driver, which resumes from the checkpoint.
            raise RuntimeError(f"tf_distribute worker {rank}: Spark retried the barrier stage (attempt "
                               f"{ctx.attemptNumber() + 1}); the ucluster driver restarts from the checkpoint")
        host = ctx.getTaskInfos()[rank].address.rsplit(":", 1)[0]
        cluster = ctx.allGather(f"{host}:{_free_port()}")  # in partition order: index = rank
        hosts = [c.rsplit(":", 1)[0] for c in cluster]
        with tempfile.TemporaryDirectory(prefix="ucluster-tfd-") as workdir:
            with open(os.path.join(workdir, "payload.pkl"), "wb") as fh:
                fh.write(payload)
            proc, threads = _start_worker(workdir, rank, cluster, hosts.count(host))
            code = proc.wait()
            for t in threads:
                t.join(timeout=5)
            if code != 0:
                raise _lost(rank, code, workdir)
            result = _read_result(workdir, 0) if rank == 0 else None
        yield rank, result

    return task


class TFDistributeRunner(HorovodRunner):
    """``tf.distribute.MultiWorkerMirroredStrategy`` workers, launched like :class:`HorovodRunner`:
    ``np < 0`` starts |np| processes here, ``np > 0`` starts np Spark tasks in one barrier stage (all start
    together or none; a lost task fails the stage). Every worker is a fresh process with its own TF_CONFIG."""

    def run(self, main: Callable[..., Any], **kwargs: Any) -> Any:
        import tempfile

        import cloudpickle

        self.check_slots()
        payload = cloudpickle.dumps((main, kwargs))
        if self.np < 0:
            with tempfile.TemporaryDirectory(prefix="ucluster-tfd-") as workdir:
                with open(os.path.join(workdir, "payload.pkl"), "wb") as fh:
                    fh.write(payload)
                return _run_local(workdir, -self.np)
        sc = self._spark().sparkContext
        sc.setJobDescription(f"ucluster: tf.distribute training on {self.np} Spark task(s) (barrier stage)")
        rows = sc.parallelize(range(self.np), self.np).barrier().mapPartitions(_barrier_task(payload)).collect()
        return dict(rows)[0]


RUNNERS = {"horovod": HorovodRunner, "tf_distribute": TFDistributeRunner}


def horovod_importable() -> tuple[bool, str]:
    """Whether ``horovod.tensorflow`` imports here, and if not, why (one line)."""
    try:
        import horovod.tensorflow  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ImportError, or a build against another TensorFlow
        return False, f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
    return True, ""


def resolve_engine(name: str) -> tuple[str, str]:
    """(engine, why) for ``run.engine``: ``auto`` picks Horovod where it imports, else tf_distribute."""
    if name != "auto":
        return name, f"run.engine={name}"
    ok, why = horovod_importable()
    if ok:
        return "horovod", "run.engine=auto and Horovod is importable"
    return "tf_distribute", f"run.engine=auto and Horovod is not importable ({why})"
