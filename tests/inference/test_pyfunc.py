"""The training's MLflow model: registry round trip, spark_udf, jobs/assign.py on models:/ and a real REST server."""

from __future__ import annotations

import base64
import json
import os
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


@pytest.fixture
def registry(trained, monkeypatch):
    """The trained run's store as the process's tracking and registry URI."""
    uri = f"sqlite:///{trained.run_dir.absolute() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)  # set_registry_uri exports it too; monkeypatch removes it after
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


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

    client = MlflowClient(registry)
    run = client.get_run(trained.run_id)
    assert run.data.tags["mlflow.source.name"] != "gloo_exec_fn.py"
    assert "gloo_exec_fn" not in run.data.tags["mlflow.source.name"]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert run.data.tags["mlflow.source.git.commit"] == head
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == Path(jet_dataset).name
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
        # MLflow prefixes its own "Failed to predict data" line; ours is the last, whole
        assert answer["message"].strip().splitlines()[-1] == ("Error: features values of 12 bytes are not P x 8 "
                                                              "float32 (the model's 8 features per particle)")
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
