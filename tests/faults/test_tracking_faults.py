"""MLflow down at start -> one line before any training; down mid-run -> training goes on, metrics buffered locally
and replayed; a tracking URI with credentials never reaches a record."""

from __future__ import annotations

import subprocess
import sys

from mlflow.tracking import MlflowClient

from tests.faults.conftest import REPO, free_port, job_env, kill_worker, start_job, wait_for_epoch
from ucluster.redact import redact_text

SECRET = "s3cr3t-t0ken"


def test_redact_text_masks_userinfo_and_secret_query_parameters():
    assert redact_text(f"https://alice:{SECRET}@mlflow.example.com/x") == "https://***@mlflow.example.com/x"
    assert redact_text(f"postgresql+psycopg2://u:{SECRET}@db/mlflow") == "postgresql+psycopg2://***@db/mlflow"
    assert redact_text(f"error for http://h/api?x=1&token={SECRET}") == "error for http://h/api?x=1&token=***"
    assert redact_text("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"


def test_print_config_masks_tracking_credentials():
    """jobs/train.py --print-config prints the resolved config: the URI's credentials are masked there too."""
    proc = subprocess.run([sys.executable, "-m", "jobs.train", "--print-config", "--run.tracking_uri",
                           f"https://alice:{SECRET}@mlflow.example.com/x"], cwd=REPO, env=job_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert SECRET not in proc.stdout + proc.stderr and "alice" not in proc.stdout
    assert "tracking_uri: https://***@mlflow.example.com/x" in proc.stdout


def test_tracking_server_down_at_start_fails_before_training(jet_dataset, tmp_path):
    out = tmp_path / "run"
    uri = f"http://user:{SECRET}@127.0.0.1:{free_port()}"  # nothing listens there
    job = start_job(jet_dataset, out, "--np", "-1", "--epochs", "2", "--run.tracking_uri", uri)
    stdout, stderr = job.communicate(timeout=300)
    assert job.returncode == 1
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("error: MLflow tracking store http://***@127.0.0.1:") and "unavailable" in lines[-1]
    assert SECRET not in stdout + stderr
    assert not (out / "logs" / "workers").exists()  # no worker ever started


def _replay_after_restart(out, mlflow_server, run_id: str):
    """Start the server again (same store), replay the job's buffer with the fallback tool; (client, run)."""
    mlflow_server.start()
    proc = subprocess.run([sys.executable, "-m", "ucluster.train.fallback", "--out", str(out), "--tracking-uri",
                           mlflow_server.url], cwd=REPO, env=job_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=mlflow_server.url)
    return client, client.get_run(run_id)


def test_server_lost_mid_run_training_continues_and_metrics_are_replayed(jet_dataset, tmp_path, mlflow_server):
    out = tmp_path / "run"
    uri = mlflow_server.url.replace("http://", f"http://alice:{SECRET}@")
    epochs = 4
    job = start_job(jet_dataset, out, "--np", "-1", "--epochs", str(epochs), "--run.tracking_uri", uri)
    wait_for_epoch(job, out, rank=0, epoch=2)
    mlflow_server.stop()
    stdout, stderr = job.communicate(timeout=600)
    assert job.returncode == 0, stderr[-3000:]
    assert (out / "model.keras").is_file()
    buffers = sorted((out / "mlflow-fallback").glob("*.jsonl"))
    assert len(buffers) == 1
    warnings = [ln for ln in stdout.splitlines() if "is unreachable" in ln]  # rank 0's console line
    assert warnings and str(buffers[0]) in warnings[0] and "python -m ucluster.train.fallback" in warnings[0]
    run_id = buffers[0].stem
    # the server comes back (same store): the buffered epochs and the end of the run are replayed
    client, run = _replay_after_restart(out, mlflow_server, run_id)
    assert run.info.status == "FINISHED"
    assert sorted({m.step for m in client.get_metric_history(run_id, "loss")}) == list(range(epochs))
    assert "final_test_cluster_acc" in run.data.metrics
    # no credential anywhere: params, logged config, console, logs, checkpoint, fallback buffer
    assert run.data.params["run.tracking_uri"] == mlflow_server.url.replace("http://", "http://***@")
    config_yaml = client.download_artifacts(run_id, "config.yaml", str(tmp_path))
    assert "http://***@" in open(config_yaml).read()
    records = [stdout, stderr, *(p.read_bytes().decode(errors="replace") for p in out.rglob("*")
                                 if p.is_file() and p.suffix in (".log", ".json", ".jsonl", ".replayed", ".npz"))]
    assert all(SECRET not in r for r in records)
    assert SECRET not in str(run.data.params) + str(run.data.tags)


def test_worker_lost_while_the_server_is_down_restarts_without_the_store(jet_dataset, tmp_path, mlflow_server):
    """A worker dies while MLflow is down: the relaunched rank 0 cannot reopen the run in the store, so it goes on
    into the local buffer instead of failing every restart; the replay then completes the same run."""
    out = tmp_path / "run"
    epochs = 4
    job = start_job(jet_dataset, out, "--np", "-2", "--epochs", str(epochs), "--run.tracking_uri", mlflow_server.url)
    wait_for_epoch(job, out, rank=0, epoch=1)
    mlflow_server.stop()
    status = wait_for_epoch(job, out, rank=1, epoch=2)
    kill_worker(job, status["pid"])
    stdout, stderr = job.communicate(timeout=600)
    assert job.returncode == 0, stderr[-3000:]
    assert f"warning: worker 1 exited with signal 9 (killed) during epoch {status['epoch'] + 1}; restarted from" \
        in stderr, stderr[-3000:]
    assert "giving up" not in stderr and (out / "model.keras").is_file()
    buffers = sorted((out / "mlflow-fallback").glob("*.jsonl"))
    assert len(buffers) == 1 and "is unreachable" in stdout
    run_id = buffers[0].stem
    client, run = _replay_after_restart(out, mlflow_server, run_id)
    assert run.info.status == "FINISHED" and "final_test_cluster_acc" in run.data.metrics
    assert sorted({m.step for m in client.get_metric_history(run_id, "loss")}) == list(range(epochs))
