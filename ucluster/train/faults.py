"""What the driver needs to know when a worker dies: per-worker status files, the cause in one line, the log.

Every worker writes a small JSON status file (``<output_dir>/logs/workers/rank-<r>.json``: pid, attempt, phase,
epoch, and on an exception its type and first line) at start, at every epoch start and when it fails. A worker
killed by a signal writes nothing more, so after a failure the driver reads the last status of each rank and the
launcher's exit codes and says in one line what happened (:func:`diagnose`). Errors that a restart cannot fix
(a bad input, a non-finite loss: :data:`FATAL`) are not retried.

The console keeps rank 0's epoch lines; everything else the workers and the launcher print (warnings,
tracebacks, TensorFlow's C++ logs) goes to the job's log file (:class:`ConsoleFilter`), whose path is printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ucluster.atomic import atomic_write_bytes
from ucluster.redact import redact_text

# Exception types that mean "the inputs or the configuration are wrong": restarting would fail the same way.
FATAL = ("TrainingError", "DatasetError", "ConfigError", "LaunchError", "CheckpointError")


def logs_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "logs"


def status_path(output_dir: str | Path, rank: int) -> Path:
    return logs_dir(output_dir) / "workers" / f"rank-{rank}.json"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact_text(text.splitlines()[0] if text else type(exc).__name__)[:400]


class WorkerStatus:
    """The status file of one worker (written atomically: the driver may read it at any time)."""

    def __init__(self, output_dir: str | Path, rank: int, attempt: int):
        self.path = status_path(output_dir, rank)
        self.data = {"rank": rank, "pid": os.getpid(), "host": socket.gethostname(), "attempt": attempt,
                     "phase": "starting", "epoch": None, "time": time.time()}
        self.write()

    def write(self, **changes) -> None:
        self.data.update(changes, time=time.time())
        try:
            atomic_write_bytes(self.path, json.dumps(self.data).encode())
        except OSError:  # a status file is a diagnosis aid; never fail training for it
            pass

    def epoch(self, epoch: int) -> None:
        now, previous = time.time(), self.data.get("epoch_started")
        wall = {"last_epoch_wall": now - previous} if previous else {}
        self.write(phase="epoch", epoch=epoch, epoch_started=now, **wall)

    def failed(self, exc: BaseException) -> None:
        self.write(phase="failed", error_type=type(exc).__name__, error=first_line(exc),
                   fatal=type(exc).__name__ in FATAL)


def read_statuses(output_dir: str | Path, attempt: int) -> dict[int, dict]:
    """The last status of every rank of ``attempt``."""
    out = {}
    for path in (logs_dir(output_dir) / "workers").glob("rank-*.json"):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if data.get("attempt") == attempt:
            out[int(data["rank"])] = data
    return out


def describe_exit(code: int) -> str:
    """``exited with signal 9 (killed)`` / ``exited with status 1``; launchers report a signal as 128 + n."""
    if code < 0 or code > 128:
        sig = -code if code < 0 else code - 128
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        words = {"SIGKILL": "killed", "SIGTERM": "terminated", "SIGSEGV": "segmentation fault",
                 "SIGABRT": "aborted", "SIGBUS": "bus error", "SIGINT": "interrupted"}.get(name, name)
        return f"exited with signal {sig} ({words})"
    return f"exited with status {code}"


@dataclass
class Failure:
    """A failed attempt, as the driver understands it."""

    line: str  # what happened, e.g. "worker 1 exited with signal 9 (killed) during epoch 4"
    retryable: bool
    rank: int | None = None
    epoch: int | None = None  # 0-based epoch the failing worker was in
    epoch_started: float | None = None


_HOROVOD_FIRST = re.compile(r"Process name:\s*(\S+)\s*Exit code:\s*(-?\d+)", re.S)
# ucluster.distributed.WorkerLost (tf_distribute engine), also inside a Spark barrier stage's error text.
_TFD_FIRST = re.compile(r"tf_distribute worker (\d+) ended with exit code (-?\d+)")


def diagnose(exc: BaseException, output_dir: str | Path, attempt: int) -> Failure:
    """One line out of a launcher failure: which worker died, how, and during which epoch."""
    statuses = read_statuses(output_dir, attempt)
    fatal = sorted((s for s in statuses.values() if s.get("fatal")), key=lambda s: s["rank"])
    if fatal:  # a bad input or a diverging loss: every retry would fail the same way
        return Failure(fatal[0]["error"], False, fatal[0]["rank"], fatal[0].get("epoch"))
    if type(exc).__name__ in FATAL:
        return Failure(first_line(exc), False)
    m = _HOROVOD_FIRST.search(str(exc)) or _TFD_FIRST.search(str(exc))
    rank, how = None, None
    if m:
        try:
            rank = int(m.group(1))
        except ValueError:
            rank = None
        code = int(m.group(2))
        how = describe_exit(code)
        status = statuses.get(rank, {}) if rank is not None else {}
        if code <= 128 and status.get("error"):
            how += f" ({status['error_type']}: {status['error']})"
    else:
        failed = sorted((s for s in statuses.values() if s.get("phase") == "failed"), key=lambda s: s["time"])
        if failed:
            rank = failed[0]["rank"]
            how = f"failed ({failed[0]['error_type']}: {failed[0]['error']})"
        else:
            how = f"failed ({type(exc).__name__}: {first_line(exc)})"
    who = f"worker {rank}" if rank is not None else "a worker"
    status = statuses.get(rank if rank is not None else -1) or statuses.get(0) or {}
    epoch = status.get("epoch")
    when = f" during epoch {epoch + 1}" if epoch is not None else " before the first epoch"
    return Failure(f"{who} {how}{when}", True, rank, epoch, status.get("epoch_started"))


class JobLog:
    """The job's log file: everything the launcher and the workers print, and every traceback."""

    def __init__(self, output_dir: str | Path):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = logs_dir(output_dir) / f"train-{stamp}-{os.getpid()}.log"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            self._fh.write(redact_text(text))
            self._fh.flush()

    def traceback(self, exc: BaseException, title: str) -> None:
        import traceback

        self.write(f"\n=== {time.strftime('%H:%M:%S')} {title}\n"
                   + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))

    def close(self) -> None:
        self._fh.close()


# Launcher lines that repeat what the one-line cause says: log file only.
_LAUNCHER_NOISE = re.compile(r"^(Process \d+ exit with status code|Exception happened during safe_shell_exec|"
                             r"Terminating remaining workers|User function raise error|run finished\.)")
_WORKER_LINE = re.compile(r"^(?:\w{3} \w{3} +\d+ [\d:]+ \d{4})?\[(\d+)\]<(stdout|stderr)>:")


class ConsoleFilter:
    """Stands in for ``sys.stdout``/``sys.stderr`` while the launcher runs: every line goes to the job log; the
    console gets rank 0's stdout (epoch lines, progress) and the driver's own lines, not worker stderr
    (tracebacks, TensorFlow's C++ logs) or the launcher's exit notices. Lines are assembled per thread
    (``print`` writes the text and the newline separately, and several forwarding threads write at once)."""

    def __init__(self, console, log: JobLog):
        self.console, self.log = console, log
        self._partial: dict[int, str] = {}
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        tid = threading.get_ident()
        with self._lock:
            text = self._partial.pop(tid, "") + text
            *lines, rest = re.split(r"(?<=[\r\n])", text)
            if rest:
                self._partial[tid] = rest
        for line in lines:
            self.log.write(line)
            m = _WORKER_LINE.match(line)
            if m and (m.group(1) != "0" or m.group(2) == "stderr"):
                continue
            if _LAUNCHER_NOISE.match(line):
                continue
            self.console.write(redact_text(line))
        self.console.flush()
        return len(text)

    def flush(self) -> None:
        self.console.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.console.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self.console, "encoding", "utf-8")


class capture_console:
    """Context manager: route sys.stdout/sys.stderr through :class:`ConsoleFilter` into ``log``."""

    def __init__(self, log: JobLog):
        self.log = log

    def __enter__(self):
        self.saved = sys.stdout, sys.stderr
        sys.stdout = ConsoleFilter(self.saved[0], self.log)
        sys.stderr = ConsoleFilter(self.saved[1], self.log)
        return self

    def __exit__(self, *exc) -> None:
        for stream in (sys.stdout, sys.stderr):
            rest = "".join(stream._partial.values()) if isinstance(stream, ConsoleFilter) else ""
            if rest:
                self.log.write(rest + "\n")
        sys.stdout, sys.stderr = self.saved


class SignalWatch:
    """Whether this driver process received SIGINT/SIGTERM while the launcher ran. Horovod replaces the signal
    handlers, but ``signal.set_wakeup_fd`` still sees every signal: an interrupted job must not be restarted."""

    def __init__(self) -> None:
        self.r, self.w = os.pipe()
        os.set_blocking(self.w, False)
        os.set_blocking(self.r, False)
        self.old = None
        try:
            self.old = signal.set_wakeup_fd(self.w)
        except ValueError:  # not the main thread: no signals here anyway
            self.old = None

    def received(self) -> set[int]:
        try:
            data = os.read(self.r, 1024)
        except BlockingIOError:
            data = b""
        return {b for b in data if b in (signal.SIGINT, signal.SIGTERM)}

    def close(self) -> None:
        if self.old is not None:
            try:
                signal.set_wakeup_fd(self.old)
            except ValueError:
                pass
        os.close(self.r)
        os.close(self.w)
