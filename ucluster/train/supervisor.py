"""The driver's side of a training job: it outlives the workers, so it owns the MLflow run and the restarts.

Before any worker starts, the driver checks that the tracking store answers (one-line error otherwise) and
creates the run (or, for ``--resume``, reopens the checkpoint's). It then launches the workers. When a worker
dies or a collective fails, the launcher returns an error to the driver; the driver says in one line what
happened (:func:`ucluster.train.faults.diagnose`), writes the traceback to the job's log file, and, up to
``run.max_restarts`` times, relaunches the workers, which continue from the last checkpoint (written after every
epoch: at most one epoch of work is lost) in the same MLflow run. Restarts, their causes and the epochs lost
are logged to the run (tags ``ucluster.restart.<n>``, metrics ``restarts`` and ``restart_epochs_lost``; rank 0
adds ``restart_recovery_seconds``). When it gives up, or when the job is interrupted, the driver marks the run
FAILED or KILLED: no run is left RUNNING by a dead job.

Why restart-from-checkpoint rather than Horovod elastic: see docs/reliability.md (measured there).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from typing import Any

from ucluster.config import Config
from ucluster.train import checkpoint as ckpt
from ucluster.train.faults import JobLog, SignalWatch, capture_console, diagnose, first_line, read_statuses
from ucluster.train.loop import TrainingError


class JobFailed(TrainingError):
    """Training stopped for good; the message is the one line for the user."""


class DriverRun:
    """The MLflow run as the driver sees it (an MlflowClient: no active run in the driver process)."""

    def __init__(self, cfg: Config, run_id: str | None):
        from mlflow.tracking import MlflowClient

        from ucluster.tracking import TrackingUnavailable, setup_or_fail

        try:
            exp_id = setup_or_fail(cfg.run.output_dir, cfg.run.experiment, cfg.run.tracking_uri)
        except TrackingUnavailable as exc:
            raise JobFailed(str(exc)) from None
        self.client = MlflowClient()
        if run_id is None:
            tags = {"mlflow.parentRunId": cfg.run.parent_run_id} if cfg.run.parent_run_id else {}
            run = self.client.create_run(exp_id, run_name=cfg.run.run_name or None, tags=tags)
            run_id = run.info.run_id
        self.run_id = run_id

    def _safe(self, fn: Callable, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - the store may be down; the job's outcome does not depend on it
            print(f"warning: could not record in MLflow ({first_line(exc)})", file=sys.stderr, flush=True)

    def record_restart(self, n: int, line: str, epochs_lost: float | None) -> None:
        self._safe(self.client.set_tag, self.run_id, f"ucluster.restart.{n}", line)
        self._safe(self.client.log_metric, self.run_id, "restarts", n, int(time.time() * 1000), n)
        if epochs_lost is not None:  # unknown: no figure rather than a made-up one
            self._safe(self.client.log_metric, self.run_id, "restart_epochs_lost", epochs_lost,
                       int(time.time() * 1000), n)

    def close(self, status: str, line: str) -> None:
        self._safe(self.client.set_tag, self.run_id, "ucluster.failure", line)
        self._safe(self.client.set_terminated, self.run_id, status)

    def ensure_closed(self) -> None:
        """After a successful job the run is FINISHED (rank 0 ended it); if rank 0 could not, end it here."""
        try:
            if self.client.get_run(self.run_id).info.status == "RUNNING":
                self.client.set_terminated(self.run_id, "FINISHED")
        except Exception:  # noqa: BLE001 - store down: the fallback file says how to finish it
            pass


def _epochs_lost(output_dir: str, attempt: int, failure_time: float) -> float | None:
    """Epochs of work lost: time spent in the interrupted epoch over the length of the one before (None when
    unknown: rank 0 had not finished an epoch in this attempt).

    An upper bound, not capped: the failure time is when the driver noticed the failure, so the seconds the launcher
    took to notice count as lost work too (on tiny epochs that alone can exceed 1). What bounds the real loss to one
    epoch is structural: every epoch ends with a checkpoint, and the relaunch resumes from the last one."""
    status = read_statuses(output_dir, attempt).get(0) or {}
    started, wall = status.get("epoch_started"), status.get("last_epoch_wall")
    if not started or not wall:
        return None
    return float(max(0.0, (failure_time - started) / wall))


def _resume_point(output_dir: str, run_id: str) -> tuple[bool, str]:
    state = ckpt.read_state(output_dir)
    if state and state.get("run_id") == run_id and not state.get("finished") and state.get("epoch", -1) >= 0:
        return True, f"the epoch-{state['epoch'] + 1} checkpoint"
    return False, "the start (no checkpoint yet)"


def supervise(cfg: Config, runner, worker: Callable[..., dict]) -> dict:
    """Run ``worker`` on the workers of ``runner`` (None: in this process) with the driver-owned MLflow run,
    restarting after failures; returns rank 0's result (with ``restarts``)."""
    state = ckpt.read_state(cfg.run.output_dir) if cfg.run.resume else None
    run = DriverRun(cfg, state.get("run_id") if state else None)
    log = JobLog(cfg.run.output_dir)
    signals = SignalWatch()
    restarts, restart, attempt_cfg = 0, None, cfg
    max_restarts = cfg.run.max_restarts if runner is not None else 0  # one in-process JAX worker: no relaunch
    try:
        while True:
            kwargs = {"config": attempt_cfg.to_dict(), "run_id": run.run_id, "attempt": restarts, "restart": restart}
            try:
                if runner is None:
                    result = worker(**kwargs)
                else:
                    with capture_console(log):
                        result = runner.run(worker, **kwargs)
                break
            except BaseException as exc:
                failure_time = time.time()
                log.traceback(exc, f"attempt {restarts + 1} failed")
                if isinstance(exc, KeyboardInterrupt) or signals.received():
                    line = "training interrupted; resume with --resume"
                    run.close("KILLED", line)
                    raise JobFailed(f"{line} (log: {log.path})") from None
                failure = diagnose(exc, cfg.run.output_dir, restarts)
                if not failure.retryable:
                    run.close("FAILED", failure.line)
                    raise JobFailed(f"{failure.line} (log: {log.path})") from None
                lost = _epochs_lost(cfg.run.output_dir, restarts, failure_time)
                resume, where = _resume_point(cfg.run.output_dir, run.run_id)
                if restarts >= max_restarts:
                    line = (f"{failure.line}; giving up after {restarts} restart(s); resume with --resume "
                            f"(log: {log.path})")
                    run.close("FAILED", line)
                    raise JobFailed(line) from None
                restarts += 1
                line = f"{failure.line}; restarted from {where} ({restarts} of {max_restarts} restarts)"
                print(f"warning: {line}", file=sys.stderr, flush=True)
                log.write(f"=== {line}\n")
                run.record_restart(restarts, line, lost)
                attempt_cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, resume=resume))
                restart = {"attempt": restarts, "failure_time": failure_time}
    finally:
        signals.close()
        log.close()
    run.ensure_closed()
    return {**result, "restarts": restarts, "log": str(log.path)}
