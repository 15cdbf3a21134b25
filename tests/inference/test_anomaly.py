"""The anomaly report's numbers and figures from a small hand-checked table, logged into a real MLflow store."""

import math

import mlflow
import numpy as np
import pytest

from ucluster.inference.anomaly import (
    KMeansBaseline,
    anomaly_report,
    baseline_reports,
    js_divergence,
    kmeans_baseline,
    write_and_log,
)


def _table():
    # cluster 0: 8 background, 0 signal; cluster 1: 4 background, 4 signal; cluster 2: 16 background, 1 signal
    clusters = np.array([0] * 8 + [1] * 8 + [2] * 17)
    labels = np.array([0] * 8 + [0] * 4 + [1] * 4 + [0] * 16 + [1])
    mjj = np.concatenate([np.full(8, 2500.0), [2500.0, 2500.0, 3500.0, 3500.0], np.full(4, 3500.0),
                          np.full(8, 2500.0), np.full(8, 3500.0), [3500.0]])
    return clusters, labels, mjj


def test_report_numbers_by_hand():
    clusters, labels, mjj = _table()
    r = anomaly_report(clusters, labels, mjj, 3, mjj_edges=np.array([2000.0, 3000.0, 4000.0]))
    c = {row["cluster"]: row for row in r.clusters}
    assert [c[k]["events"] for k in range(3)] == [8, 8, 17]
    assert c[1]["signal_fraction"] == pytest.approx(0.5)
    assert c[1]["s_over_sqrt_b"] == pytest.approx(4 / 2)
    assert c[2]["s_over_sqrt_b"] == pytest.approx(1 / 4)
    assert c[0]["signal_fraction"] == 0.0
    assert r.input_signal_fraction == pytest.approx(5 / 33)
    assert r.enriched_cluster == 1 and r.enriched_signal_fraction == pytest.approx(0.5)
    # background m_jj: all 28 = 18 low / 10 high... cluster 1's background = 2 low / 2 high
    p, q = np.array([0.5, 0.5]), np.array([18, 10]) / 28
    m = (p + q) / 2
    expected = 0.5 * sum(p * np.log2(p / m)) + 0.5 * sum(q * np.log2(q / m))
    assert r.sculpting_js == pytest.approx(expected)
    assert "most enriched cluster 1: 0.5000" in r.summary


def test_js_divergence_limits():
    assert js_divergence([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    assert math.isnan(js_divergence([0, 0], [1, 1]))


def test_report_logged_to_mlflow(tmp_path):
    clusters, labels, mjj = _table()
    r = anomaly_report(clusters, labels, mjj, 3)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = write_and_log(r, clusters, labels, mjj, str(tmp_path / "report"), tracking_uri=uri, experiment="t")
    run = mlflow.MlflowClient(uri).get_run(run_id)
    assert run.data.metrics["anomaly_enriched_signal_fraction"] == pytest.approx(0.5)
    assert run.data.metrics["anomaly_cluster1_s_over_sqrt_b"] == pytest.approx(2.0)
    names = {a.path for a in mlflow.MlflowClient(uri).list_artifacts(run_id, "anomaly")}
    assert {"anomaly/mjj.png", "anomaly/summary.txt", "anomaly/clusters.json"} <= names


def test_kmeans_baseline_separates_two_prong_blob():
    rng = np.random.default_rng(0)
    n = 400
    m1 = np.concatenate([rng.normal(85, 5, 40), rng.uniform(20, 400, n)])
    m2 = np.concatenate([rng.normal(85, 5, 40), rng.uniform(20, 300, n)])
    t1 = np.concatenate([rng.normal(0.2, 0.03, 40), rng.uniform(0.3, 0.9, n)])
    t2 = np.concatenate([rng.normal(0.2, 0.03, 40), rng.uniform(0.3, 0.9, n)])
    labels = np.concatenate([np.ones(40), np.zeros(n)])
    r = anomaly_report(kmeans_baseline(m1, m2, t1, t2, 6, seed=1), labels, np.full(n + 40, 3000.0), 6)
    assert r.enriched_signal_fraction > 3 * r.input_signal_fraction


def test_baselines_at_several_k_in_the_logged_report(tmp_path):
    """The baseline rows of the report are k-means' own clusters at each k, logged beside the model's."""
    rng = np.random.default_rng(0)
    n = 400
    m1 = np.concatenate([rng.normal(85, 5, 40), rng.uniform(20, 400, n)])
    m2 = np.concatenate([rng.normal(85, 5, 40), rng.uniform(20, 300, n)])
    t1 = np.concatenate([rng.normal(0.2, 0.03, 40), rng.uniform(0.3, 0.9, n)])
    t2 = np.concatenate([rng.normal(0.2, 0.03, 40), rng.uniform(0.3, 0.9, n)])
    labels = np.concatenate([np.ones(40), np.zeros(n)])
    mjj = rng.uniform(2500, 4000, n + 40)
    base = baseline_reports(m1, m2, t1, t2, labels, mjj, [2, 6])
    for k in (2, 6):
        direct = anomaly_report(kmeans_baseline(m1, m2, t1, t2, k), labels, mjj, k)
        assert base[k].enriched_signal_fraction == direct.enriched_signal_fraction
        assert [r["events"] for r in base[k].clusters] == [r["events"] for r in direct.clusters]
    assert base[6].enriched_signal_fraction > 3 * base[6].input_signal_fraction
    with pytest.raises(ValueError, match="between 1 and the 440 events"):
        baseline_reports(m1, m2, t1, t2, labels, mjj, [0])

    clusters, table_labels, table_mjj = _table()
    r = anomaly_report(clusters, table_labels, table_mjj, 3)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = write_and_log(r, clusters, table_labels, table_mjj, str(tmp_path / "report"), tracking_uri=uri,
                           experiment="t", baselines=base)
    metrics = mlflow.MlflowClient(uri).get_run(run_id).data.metrics
    assert metrics["anomaly_baseline_k6_enriched_signal_fraction"] == pytest.approx(base[6].enriched_signal_fraction)
    assert metrics["anomaly_baseline_k2_mjj_sculpting_js"] == pytest.approx(base[2].sculpting_js)
    summary = (tmp_path / "report" / "summary.txt").read_text()
    assert summary.startswith(r.summary) and "6 clusters: most enriched cluster" in summary


def test_baseline_fitted_on_train_assigns_unseen_events_to_its_own_clusters():
    """Fit on one sample, assign another in the fitted standardisation: the fitted events get back their own
    labels, and a signal blob drawn again lands in the cluster that held it at fit time."""
    rng = np.random.default_rng(1)

    def sample(n_sig: int, n_bkg: int):
        cols = [np.concatenate([rng.normal(500, 10, n_sig), rng.uniform(20, 900, n_bkg)]),
                np.concatenate([rng.normal(100, 5, n_sig), rng.uniform(20, 500, n_bkg)]),
                np.concatenate([rng.normal(0.2, 0.02, n_sig), rng.uniform(0.3, 0.9, n_bkg)]),
                np.concatenate([rng.normal(0.2, 0.02, n_sig), rng.uniform(0.3, 0.9, n_bkg)])]
        return cols, np.concatenate([np.ones(n_sig), np.zeros(n_bkg)])

    train, y_train = sample(40, 2000)
    fitted = KMeansBaseline.fit(*train, 12, seed=0)
    np.testing.assert_array_equal(fitted.assign(*train), fitted.labels)
    np.testing.assert_array_equal(kmeans_baseline(*train, 12, seed=0), fitted.labels)
    chosen = anomaly_report(fitted.labels, y_train, np.full(len(y_train), 3500.0), 12).enriched_cluster
    test, y_test = sample(20, 1000)
    test_clusters = fitted.assign(*test)
    assert (test_clusters[y_test == 1] == chosen).mean() > 0.9
