"""The two distributed engines on the same tiny UCluster training: same clustering figures, MLflow read back,
--resume on tf_distribute, and the engine choice of run.engine=auto."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from ucluster.distributed import resolve_engine
from ucluster.tracking import tracking_uri
from ucluster.train.trainer import train

FIGURES = ("test_cluster_acc", "test_nmi", "test_ari", "test_class_acc", "val_cluster_acc")


@pytest.fixture(autouse=True)
def _local_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _cfg(base, tmp_path, engine: str, epochs: int = 3, **run):
    return dataclasses.replace(
        base, train=dataclasses.replace(base.train, epochs=epochs),
        run=dataclasses.replace(base.run, engine=engine, np=-2, deterministic=True,
                                output_dir=str(tmp_path / f"{engine}-{epochs}-{len(run)}"), **run))


def test_both_engines_end_with_the_same_clustering_and_tf_distribute_resumes(tiny_config, two_horovod_workers,
                                                                           tmp_path, capsys):
    # Horovod's run is the session's 2-worker run (tests/conftest.py): the same config as _cfg(..., "horovod").
    hvd_cfg = two_horovod_workers.cfg
    assert hvd_cfg.flat() == {**_cfg(tiny_config, tmp_path, "horovod").flat(), "run.output_dir": hvd_cfg.run.output_dir}
    assert "engine: horovod (run.engine=horovod)" in two_horovod_workers.stderr
    cfgs = {"horovod": hvd_cfg, "tf_distribute": _cfg(tiny_config, tmp_path, "tf_distribute")}
    results = {"horovod": two_horovod_workers.result}
    for engine, cfg in cfgs.items():
        if engine not in results:
            results[engine] = train(cfg)
            assert f"engine: {engine} (run.engine={engine})" in capsys.readouterr().err
        client = MlflowClient(tracking_uri=tracking_uri(cfg.run.output_dir))
        run = client.get_run(results[engine]["run_id"])
        assert run.info.status == "FINISHED"
        assert run.data.params["engine"] == engine and run.data.params["n_workers"] == "2"
        assert run.data.params["global_batch"] == "64"
        assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1, 2]
        assert run.data.metrics["final_test_cluster_acc"] == pytest.approx(results[engine]["test_cluster_acc"])
    hvd, tfd = results["horovod"], results["tf_distribute"]
    print("\n" + "\n".join(f"{k}: horovod {hvd[k]:.4f}  tf_distribute {tfd[k]:.4f}" for k in FIGURES))
    # Same model, data, seeds and averaged-gradient step: only the order of float sums differs between the
    # engines' all-reduces, which a few hundred jets turn into at most a few jets' worth of accuracy.
    for key in FIGURES:
        assert tfd[key] == pytest.approx(hvd[key], abs=0.03), key
    assert tfd["loss"] == pytest.approx(hvd["loss"], rel=0.02)

    # --resume on tf_distribute: two epochs, then the third in the same run, ending where the straight run ended
    first = _cfg(tiny_config, tmp_path, "tf_distribute", epochs=2, run_name="resumed")
    part = train(first)
    again = dataclasses.replace(first, train=tiny_config.train,
                                run=dataclasses.replace(first.run, resume=True))
    resumed = train(again)
    assert resumed["run_id"] == part["run_id"]
    for key in ("loss", *FIGURES):
        assert resumed[key] == pytest.approx(tfd[key], rel=1e-4, abs=1e-5), key


def test_auto_picks_horovod_where_it_imports_and_tf_distribute_where_it_does_not():
    assert resolve_engine("auto") == ("horovod", "run.engine=auto and Horovod is importable")
    assert resolve_engine("tf_distribute") == ("tf_distribute", "run.engine=tf_distribute")
    # A real interpreter in which importing horovod fails (as on Databricks ML 16+, where it is not installed).
    code = ("import sys; sys.modules['horovod'] = None\n"
            "from ucluster.distributed import resolve_engine; print(resolve_engine('auto'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("('tf_distribute', ") and "Horovod is not importable (ModuleNotFoundError: " in out
