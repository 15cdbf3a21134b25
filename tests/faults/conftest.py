"""Real faults on this machine: training jobs as subprocesses, workers killed by the PIDs their status files
give (checked to descend from the job this test started), a real MLflow server stopped by its PID."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
TINY_FLAGS = ["--data.max_particles", "30", "--data.shuffle_buffer", "256", "--model.k", "6",
              "--model.gap1_channels", "8", "--model.gap2_channels", "8", "--model.gap2_heads", "2",
              "--model.point_channels", "16,16", "--model.latent_dim", "16", "--model.head_units", "16",
              "--model.dropout", "0.0", "--model.mass_bins", "8", "--train.batch_size", "32",
              "--train.pretrain_epochs", "1", "--train.kmeans_sample", "300", "--run.progress", "false",
              "--run.deterministic", "true"]


def job_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def start_job(data: Path, out: Path, *flags: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "jobs.train", "--data", str(data), "--out", str(out), *TINY_FLAGS, *flags]
    return subprocess.Popen(cmd, cwd=REPO, env=job_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def worker_status(out: Path, rank: int) -> dict | None:
    try:
        return json.loads((out / "logs" / "workers" / f"rank-{rank}.json").read_text())
    except (OSError, ValueError):
        return None


def wait_for_epoch(job: subprocess.Popen, out: Path, rank: int, epoch: int, timeout: float = 240,
                   attempt: int = 0) -> dict:
    """The status of worker ``rank`` once it has started (0-based) ``epoch`` or later, in launch ``attempt``
    (0: the first launch, n: the n-th restart) or a later one."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = worker_status(out, rank)
        if (status and status.get("epoch") is not None and status["epoch"] >= epoch and status["phase"] == "epoch"
                and status.get("attempt", 0) >= attempt):
            return status
        assert job.poll() is None, f"job ended early: {job.communicate()}"
        time.sleep(0.05)
    raise AssertionError(f"worker {rank} did not reach epoch {epoch} in {timeout} s")


def kill_worker(job: subprocess.Popen, pid: int) -> float:
    """SIGKILL a worker of ``job``, only if it really is a descendant of the job process this test started."""
    descendants = {p.pid for p in psutil.Process(job.pid).children(recursive=True)}
    assert pid in descendants, f"pid {pid} is not a process of the job {job.pid}"
    os.kill(pid, signal.SIGKILL)
    return time.time()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MLflowServer:
    """A real ``mlflow server`` process on a SQLite store in a temp dir; stopped (and restarted) by its PID."""

    def __init__(self, root: Path):
        self.root, self.port = root, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        import urllib.request

        mlflow = str(Path(sys.executable).with_name("mlflow"))
        self.proc = subprocess.Popen(
            [mlflow, "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}",
             "--artifacts-destination", (self.root / "artifacts").as_uri()],
            cwd=self.root, env=job_env(), stdout=open(self.root / "server.log", "ab"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=1).read()
                return
            except OSError:
                assert self.proc.poll() is None, (self.root / "server.log").read_text()[-2000:]
                time.sleep(0.3)
        raise AssertionError("mlflow server did not start")

    def stop(self) -> None:
        """Kill the server's process group (the server and the uvicorn worker it started)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


@pytest.fixture
def mlflow_server(tmp_path):
    server = MLflowServer(tmp_path)
    server.start()
    yield server
    server.stop()
