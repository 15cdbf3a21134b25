"""Evaluation of a real assignment output: Spark-counted metrics against ucluster.train.metrics, plots, MLflow."""

from __future__ import annotations

import numpy as np
import pyarrow.dataset as pads
import pytest
from mlflow.tracking import MlflowClient

from jobs import evaluate as evaluate_job
from ucluster.data import schema as S
from ucluster.inference import InferenceError
from ucluster.inference.assign import assign, read_assign_meta
from ucluster.inference.evaluate import evaluate, log_report
from ucluster.tracking import tracking_uri
from ucluster.train import metrics as M

PLOTS = {"confusion_matrix.png", "jet_mass_per_cluster.png", "jet_pt_per_cluster.png", "latent_pca.png"}


@pytest.fixture(scope="module")
def assigned(spark, trained, jet_dataset, tmp_path_factory):
    """Every jet assigned once, without latent vectors (so the report recomputes a sample of them)."""
    out = tmp_path_factory.mktemp("evaluate") / "clusters.parquet"
    assign(spark, f"runs:/{trained.run_id}", jet_dataset, out, tracking=str(trained.run_dir))
    return out


def _expected_table(assigned, classes: list[str], lo: float, hi: float, split: str | None) -> np.ndarray:
    """The contingency table recomputed in numpy from the output files, for the same selection."""
    t = pads.dataset(assigned, format="parquet", partitioning="hive").to_table(
        columns=["cluster", S.LABEL, S.JET_MASS, "split"])
    names = read_assign_meta(assigned)["dataset"]["class_names"]
    ids = [names.index(c) for c in classes]
    label, mass = t.column(S.LABEL).to_numpy(), t.column(S.JET_MASS).to_numpy()
    keep = np.isin(label, ids) & (mass > lo) & (mass < hi)
    if split:
        keep &= np.asarray(t.column("split").to_pylist()) == split
    index = np.array([ids.index(v) for v in label[keep]])
    return M.contingency(t.column("cluster").to_numpy()[keep], index, 3, len(classes))


def test_metrics_equal_the_training_metrics_code_on_the_same_labels(spark, trained, assigned, tmp_path):
    report = evaluate(spark, assigned, out_dir=tmp_path / "report", latent_sample=200)
    d = trained.cfg.data
    expected = _expected_table(assigned, ["w", "z", "t"], d.mass_min, d.mass_max, "test")
    np.testing.assert_array_equal(report.table, expected)
    assert report.metrics["cluster_acc"] == pytest.approx(M.cluster_accuracy(expected))
    assert report.metrics["nmi"] == pytest.approx(M.nmi(expected))
    assert report.metrics["ari"] == pytest.approx(M.ari(expected))
    purity, efficiency = M.purity_efficiency(expected)
    for i, c in enumerate(["w", "z", "t"]):  # NaN on both sides where the matched cluster holds no test jet
        assert report.metrics[f"purity_{c}"] == pytest.approx(purity[i], nan_ok=True)
        assert report.metrics[f"efficiency_{c}"] == pytest.approx(efficiency[i], nan_ok=True)
    # the same jets and model as the trainer's final test evaluation: the same accuracy
    assert report.metrics["cluster_acc"] == pytest.approx(trained.result["test_cluster_acc"], abs=0.03)
    assert {p.name for p in report.files.values()} == PLOTS | {"summary.txt", "evaluation.json"}
    assert all(p.stat().st_size > 0 for p in report.files.values())
    summary = (tmp_path / "report" / "summary.txt").read_text()
    assert f"clustering accuracy (Hungarian) {report.metrics['cluster_acc']:.4f}" in summary
    assert "latent vectors of" in summary  # no --with-latent output: recomputed on a sample
    # another selection: two classes, a narrower mass window, every split
    other = evaluate(spark, assigned, split="all", classes=["w", "t"], mass_window=(60.0, 200.0), sample=40,
                     latent_sample=0, out_dir=tmp_path / "other")
    np.testing.assert_array_equal(other.table, _expected_table(assigned, ["w", "t"], 60.0, 200.0, None))
    assert "latent_pca.png" not in {p.name for p in other.files.values()}
    assert "random sample of 40" in other.summary


def test_report_logged_into_the_training_run(spark, trained, assigned, tmp_path):
    report = evaluate(spark, assigned, out_dir=tmp_path / "report", latent_sample=0)
    log_report(report, read_assign_meta(assigned), "test", run_id=trained.run_id, tracking=str(trained.run_dir),
               assignments=str(assigned))
    client = MlflowClient(tracking_uri=tracking_uri(trained.run_dir))
    run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED"  # the training run stays finished
    assert run.data.metrics["eval_test_cluster_acc"] == pytest.approx(report.metrics["cluster_acc"])
    assert run.data.metrics["eval_test_purity_w"] == pytest.approx(report.metrics["purity_w"])
    logged = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(trained.run_id, "evaluation/test")}
    assert {"confusion_matrix.png", "jet_mass_per_cluster.png", "summary.txt"} <= logged
    assert "confusion_matrix.png" in {a.path for a in client.list_artifacts(trained.run_id)}  # training's own
    with pytest.raises(InferenceError, match="not found"):
        log_report(report, read_assign_meta(assigned), "test", run_id="0" * 32, tracking=str(trained.run_dir))


def test_cli_on_the_test_split_logs_a_new_run_and_rejects_bad_inputs(spark, trained, jet_dataset, assigned,
                                                                   tmp_path, capsys):
    out = tmp_path / "report"
    args = ["--model", f"runs:/{trained.run_id}", "--data", str(jet_dataset), "--tracking-uri",
            str(trained.run_dir), "--out", str(out), "--latent-sample", "100"]
    assert evaluate_job.main(args) == 0
    printed = capsys.readouterr().out
    assert "clustering accuracy (Hungarian)" in printed and "matching cluster -> class" in printed
    client = MlflowClient(tracking_uri=tracking_uri(trained.run_dir))
    runs = client.search_runs([client.get_run(trained.run_id).info.experiment_id],
                              "tags.`ucluster.job` = 'evaluate'")
    assert len(runs) == 1 and runs[0].data.tags["ucluster.train_run_id"] == trained.run_id
    logged = {a.path.rsplit("/", 1)[-1] for a in client.list_artifacts(runs[0].info.run_id, "evaluation/test")}
    assert PLOTS | {"summary.txt"} <= logged  # latent_pca from the --with-latent output of the test split
    assert runs[0].info.artifact_uri.startswith((trained.run_dir / "mlartifacts").as_uri())  # beside the store
    assert (out / "summary.txt").is_file()
    cases = [(["--assignments", str(tmp_path / "missing")], "assignment output not found"),
             (["--assignments", str(jet_dataset)], "not a cluster-assignment output"),
             (["--assignments", str(assigned), "--classes", "w,x"], "classes ['x'] are not among"),
             (["--assignments", str(assigned), "--split", "nope"], "no 'nope' jets"),
             (["--assignments", str(assigned), "--run", "0" * 32, "--tracking-uri", str(trained.run_dir)],
              "not found"),
             (["--model", "0" * 32, "--data", str(jet_dataset), "--tracking-uri", str(trained.run_dir)],
              "not found")]
    for case, expected in cases:
        assert evaluate_job.main([*case, "--out", str(tmp_path / "bad"), "--latent-sample", "0"]) == 2, case
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and expected in err and "\n" not in err, err
