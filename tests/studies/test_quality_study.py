"""The quality study end to end on a tiny configuration: real trainings, a real MLflow store, the table."""

from __future__ import annotations

import json

from mlflow.tracking import MlflowClient

from studies import quality_study

TINY = ["--data.max_particles", "30", "--data.shuffle_buffer", "256", "--model.k", "6", "--model.gap1_channels", "8",
        "--model.gap2_channels", "8", "--model.gap2_heads", "2", "--model.point_channels", "16,16",
        "--model.latent_dim", "16", "--model.head_units", "16", "--model.dropout", "0", "--model.mass_bins", "8",
        "--train.batch_size", "32", "--train.pretrain_epochs", "1", "--train.epochs", "2",
        "--train.kmeans_sample", "300", "--run.progress", "false"]


def test_quality_study_writes_table_and_nested_runs(jet_dataset, tmp_path, capsys):
    out = tmp_path / "study"
    rc = quality_study.main(["--data", str(jet_dataset), "--seeds", "1,2", "--out", str(out), *TINY])
    assert rc == 0
    report = json.loads((out / "quality.json").read_text())
    names = [r["name"] for r in report["rows"]]
    assert names[0].startswith("k-means on the jet mass")
    assert names[1].startswith("best cuts on the jet mass")
    assert names[2].startswith("supervised")
    assert [n for n in names if n.startswith("UCluster seed")] == ["UCluster seed 1", "UCluster seed 2",
                                                                   "UCluster seed 1, 2 workers"]
    for row in report["rows"]:
        assert 0.0 <= row["test_cluster_acc"] <= 1.0
    for row in report["rows"][3:]:  # UCluster runs also report their k-means initialisation
        assert 0.0 <= row["init_cluster_acc"] <= 1.0
    s = report["summary"]
    accs = [r["test_cluster_acc"] for r in report["rows"][3:5]]
    assert abs(s["ucluster_mean_acc"] - sum(accs) / 2) < 1e-9
    assert s["supervised_acc"] == report["rows"][2]["test_class_acc"]
    assert "two_worker_points" in s
    table = (out / "quality.md").read_text()
    assert "UCluster seed 2" in table and "goal ≥ 0.95" in table
    assert "goal ≥ 0.95" in capsys.readouterr().out

    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("ucluster-quality")
    runs = client.search_runs([exp.experiment_id])
    parent = [r for r in runs if r.info.run_name == "quality-study"]
    assert len(parent) == 1
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent[0].info.run_id]
    assert sorted(r.info.run_name for r in children) == ["supervised", "ucluster_seed1", "ucluster_seed1_2workers",
                                                         "ucluster_seed2"]
    two = [r for r in children if r.info.run_name == "ucluster_seed1_2workers"][0]
    assert two.data.params["n_workers"] == "2" and two.data.params["global_batch"] == "32"
    assert "ratio_to_supervised" in parent[0].data.metrics


def test_quality_study_rejects_bad_seeds(capsys):
    assert quality_study.main(["--seeds", "1,x"]) == 2
    assert "--seeds" in capsys.readouterr().err
