"""The training's MLflow model: registry round trip, spark_udf, jobs/assign.py on models:/ and a real REST server."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.inference.conftest import reference_predictions

REPO = Path(__file__).resolve().parents[2]


def _test_rows(data: Path, n: int | None = None):
    table = pq.read_table(sorted((data / "split=test").glob("*.parquet")), columns=["features", "n_particles",
                                                                                     "jet_key"])
    return table if n is None else table.slice(0, n)


def _reference(trained, data, keys):
    ref = reference_predictions(trained.cfg, data, trained.model_path, ("test",))
    order = {k: i for i, k in enumerate(ref["key"])}
    idx = np.array([order[k] for k in keys])
    return ref["distances"][idx], ref["logits"][idx]


def test_run_logs_a_registered_pyfunc_model_with_source_and_dataset(trained, registry, jet_dataset):
    import mlflow
    from mlflow.tracking import MlflowClient

    from ucluster.train.checkpoint import dataset_fingerprint

    client = MlflowClient(registry)
    run = client.get_run(trained.run_id)
    # the fixture trains through train() in this process: the source is what launched it (this process's script,
    # relative to the repository), never Horovod's gloo_exec_fn.py
    script = Path(sys.argv[0]).resolve()
    launched = str(script.relative_to(REPO)) if script.is_relative_to(REPO) else str(script)
    assert run.data.tags["mlflow.source.name"] == launched and "gloo_exec_fn" not in launched
    assert run.data.tags["mlflow.source.type"] == "JOB"
    commit = run.data.tags["mlflow.source.git.commit"]
    assert re.fullmatch(r"[0-9a-f]{40}", commit), commit
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert commit == head
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == Path(jet_dataset).name
    # what the dataset is (the fingerprint the checkpoints carry) and where it lies
    assert inputs[0].dataset.digest == dataset_fingerprint(jet_dataset)[:16]
    assert inputs[0].dataset.source_type == "local"
    assert json.loads(inputs[0].dataset.source) == {"uri": str(Path(jet_dataset).absolute())}
    tags = {t.key: t.value for t in inputs[0].tags}
    n_train = sum(pq.ParquetFile(f).metadata.num_rows for f in (Path(jet_dataset) / "split=train").glob("*.parquet"))
    assert tags["train_jets"] == str(n_train) and tags["mlflow.data.context"] == "training"

    version = client.get_model_version("ucluster", "1")
    assert version.run_id == trained.run_id
    model = mlflow.pyfunc.load_model("models:/ucluster/1")
    sig = model.metadata.signature
    assert sig.inputs.input_names() == ["features", "n_particles"]
    assert sig.outputs.input_names() == ["cluster", "distances", "soft_assignment", "scores"]

    table = _test_rows(Path(jet_dataset), 50)
    frame = table.select(["features", "n_particles"]).to_pandas()
    out = model.predict(frame)
    dist, logits = _reference(trained, Path(jet_dataset), table.column("jet_key").to_pylist())
    np.testing.assert_array_equal(out["cluster"].to_numpy(), dist.argmin(axis=1))
    np.testing.assert_allclose(np.stack(out["distances"]), dist, rtol=1e-4, atol=1e-5)
    e = np.exp(-trained.alpha * (dist - dist.min(axis=1, keepdims=True)))
    np.testing.assert_allclose(np.stack(out["soft_assignment"]), e / e.sum(1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(np.stack(out["scores"]).sum(axis=1), 1.0, atol=1e-5)
    # α per call; a feature list that is not the model's is refused with one line
    sharper = model.predict(frame, params={"alpha": 50.0})
    assert np.stack(sharper["soft_assignment"]).max(axis=1).mean() > np.stack(out["soft_assignment"]).max(axis=1).mean()
    with pytest.raises(mlflow.exceptions.MlflowException, match="trained on"):
        model.predict(frame, params={"feature_names": "a,b,c"})


def test_spark_udf_and_assign_on_registry_uri_match_in_process(trained, registry, jet_dataset, spark, tmp_path):
    import mlflow
    from pyspark.sql import functions as F

    from jobs.assign import main as assign_main

    udf = mlflow.pyfunc.spark_udf(spark, "models:/ucluster/1", env_manager="local")
    df = spark.read.parquet(str(Path(jet_dataset) / "split=test"))
    rows = df.select("jet_key", udf(F.struct("features", "n_particles")).alias("out")) \
        .select("jet_key", "out.cluster").collect()
    keys = [r["jet_key"] for r in rows]
    dist, _ = _reference(trained, Path(jet_dataset), keys)
    np.testing.assert_array_equal([r["cluster"] for r in rows], dist.argmin(axis=1))

    out = tmp_path / "clusters.parquet"
    assert assign_main(["--model", "models:/ucluster/1", "--data", str(jet_dataset), "--out", str(out),
                        "--splits", "test"]) == 0
    got = pq.read_table(out, columns=["jet_key", "cluster"]).to_pydict()
    by_key = dict(zip(keys, dist.argmin(axis=1).tolist(), strict=True))
    assert got["cluster"] == [by_key[k] for k in got["jet_key"]]
    record = json.loads((out / "_ucluster_assign.json").read_text())
    assert record["model_spec"] == "models:/ucluster/1"


def test_source_of_a_cli_launch_is_the_job_and_its_commit(monkeypatch):
    """``python jobs/train.py`` (or ``-m jobs.train``): Source jobs/train.py, type JOB, the checkout's commit."""
    from ucluster.config import load_config
    from ucluster.tracking import launch_source
    from ucluster.train.tracker import source_tags

    monkeypatch.setattr(sys, "argv", [str(REPO / "jobs" / "train.py"), "--config", "conf/ucluster.yaml"])
    source, commit = launch_source()
    assert source == "jobs/train.py" and re.fullmatch(r"[0-9a-f]{40}", commit), (source, commit)
    tags = source_tags(load_config(None, {"run.source": source, "run.source_commit": commit}))
    assert tags == {"mlflow.source.name": "jobs/train.py", "mlflow.source.type": "JOB",
                    "mlflow.source.git.commit": commit}
    notebook = source_tags(load_config(None, {"run.source": "/Users/someone@cern.ch/ucluster_pipeline"}))
    assert notebook["mlflow.source.type"] == "NOTEBOOK"
    assert notebook["mlflow.databricks.notebookPath"] == "/Users/someone@cern.ch/ucluster_pipeline"


def test_pyfunc_refuses_rows_of_another_particle_count_in_one_line(trained, registry, jet_dataset):
    """A blob of the wrong number of floats for the model's P x F, or n_particles beyond the blob: one line that
    names the field, from the model loaded as a user would (the session's trained model, version 1)."""
    import mlflow
    import pandas as pd

    model = mlflow.pyfunc.load_model("models:/ucluster/1")
    p, f = 30, 8  # the tiny model: 30 particles of 8 features
    row = _test_rows(Path(jet_dataset), 1).column("features").to_pylist()[0]
    assert len(row) >= 4 * p * f
    cases = {  # features bytes, n_particles -> the line
        "fewer particles than the model reads": (row[:4 * (p - 1) * f], 3, "features hold 29 particles per jet, "
                                                                            "the model reads 30"),
        "not a whole number of particles": (row[:4 * (p * f + 1)], 3, "features values of 964 bytes are not P x 8 "
                                                                       "float32 (the model's 8 features per particle)"),
        "n_particles beyond the blob": (row[:4 * p * f], p + 1, "n_particles must lie in [0, 30], got 31..31"),
    }
    for what, (blob, n, line) in cases.items():
        frame = pd.DataFrame({"features": [blob], "n_particles": np.array([n], np.int64)})
        with pytest.raises(mlflow.exceptions.MlflowException) as err:
            model.predict(frame)
        assert err.value.message == line, what
        assert err.value.error_code == "INVALID_PARAMETER_VALUE", what


def test_unknown_version_and_bad_spec_are_one_line(trained, registry, tmp_path):
    from ucluster.inference import InferenceError
    from ucluster.inference.model_source import resolve_model

    with pytest.raises(InferenceError, match="no such registered model version") as err:
        resolve_model("models:/ucluster/99")
    assert "\n" not in str(err.value)
    with pytest.raises(InferenceError, match="expected models:/<name>/<version>"):
        resolve_model("models:/ucluster")
    from jobs.assign import main as assign_main

    out = tmp_path / "never"
    assert assign_main(["--model", "models:/nosuch/1", "--data", str(tmp_path), "--out", str(out)]) == 2
    assert not out.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_served_model_answers_like_assign(trained, registry, jet_dataset, tmp_path):
    port = _free_port()
    # as in an activated venv: the server execs uvicorn from PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": registry, "PYTHONPATH": str(REPO),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([str(mlflow_cli), "models", "serve", "-m", "models:/ucluster/1", "--env-manager",
                               "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.time() < deadline, "scoring server did not start"
            time.sleep(1)
        table = _test_rows(Path(jet_dataset), 5)
        feats = [base64.b64encode(v).decode() for v in table.column("features").to_pylist()]
        n = table.column("n_particles").to_pylist()
        status, answer = _post(f"{base}/invocations", {"dataframe_split": {
            "columns": ["features", "n_particles"], "data": [list(r) for r in zip(feats, n, strict=True)]}})
        assert status == 200, answer
        clusters = [row["cluster"] for row in answer["predictions"]]
        dist, _ = _reference(trained, Path(jet_dataset), table.column("jet_key").to_pylist())
        assert clusters == dist.argmin(axis=1).tolist()
        # a jet of the wrong size: HTTP 400 with the one line
        short = base64.b64encode(b"\0" * 12).decode()
        status, answer = _post(f"{base}/invocations", {"dataframe_split": {
            "columns": ["features", "n_particles"], "data": [[short, 1]]}})
        assert status == 400, answer
        assert answer["error_code"] == "INVALID_PARAMETER_VALUE"
        # MLflow's scoring server prefixes every MlflowException from predict with "Failed to predict data
        # '<the frame>'. \nError: "; our line follows, whole, as the body's last line and nowhere else
        ours = "features values of 12 bytes are not P x 8 float32 (the model's 8 features per particle)"
        lines = answer["message"].strip().splitlines()
        assert lines[0].startswith("Failed to predict data")
        assert lines[-1] == f"Error: {ours}" and [line for line in lines if ours in line] == [lines[-1]]
    finally:
        _stop(server)
        log.close()


def _stop(server: subprocess.Popen) -> None:
    """Stop the server and the workers it started (its own process group, started by this test)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=30)
            return
        except subprocess.TimeoutExpired:
            continue
