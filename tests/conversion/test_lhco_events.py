"""Event mode on tiny real Pythia events: LHCO-layout round trip, bad inputs, and a two-epoch training."""

from __future__ import annotations

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest

from conversion.hls4ml_reader import ConversionError
from conversion.lhco_events import FEATURE_NAMES, convert_events, read_events
from ucluster import lhco
from ucluster.data import schema as S
from ucluster.sim.pythia_events import generate_events, simulate_events


@pytest.fixture(scope="session")
def event_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("lhco_h5")
    return simulate_events(None, out, {"qcd": 48, "wprime": 24}, seed=3, events_per_task=24, processes=2)


@pytest.fixture(scope="session")
def event_dataset(event_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("events") / "events.parquet"
    convert_events([str(f) for f in event_files], str(out), max_particles_per_jet=40, progress=False)
    return out


def test_simulated_file_has_the_rd_layout(event_files):
    with h5py.File(event_files[0], "r") as f:
        values = f["df"]["block0_values"][()]
        assert values.shape == (24, 2101) and f["df"]["axis0"].shape == (2101,)
        assert f["df"].attrs["pandas_type"] == b"frame"
    pt = values[:, 0:2100:3]
    assert (pt[:, :-1] >= pt[:, 1:]).all()  # hardest first, zero padding at the end
    assert set(np.unique(values[:, -1])) <= {0.0, 1.0}
    again = generate_events("qcd" if "qcd" in event_files[0].name else "wprime", 3,
                            int(event_files[0].name.split("seed")[1][:9]))
    np.testing.assert_allclose(again.reshape(3, -1), values[:3, :2100], rtol=1e-6)  # seeded: reproducible


def test_round_trip_keys_features_and_event_columns(event_files, event_dataset):
    meta = S.read_meta(event_dataset)
    assert meta.level == "event" and meta.class_names == ["background", "signal"]
    assert meta.feature_names == FEATURE_NAMES and meta.n_particles == 80
    t = pq.read_table(event_dataset)
    labels = t.column(S.LABEL).to_numpy()
    assert (labels == 0).sum() + (labels == 1).sum() == len(labels) == 72 - meta.params["events_dropped"]
    assert (labels == 1).sum() > 10
    m1, m2 = t.column(S.M_J1).to_numpy(), t.column(S.M_J2).to_numpy()
    assert (m1 >= m2).all() and (m2 > 0).all()  # heavier jet first
    np.testing.assert_array_equal(t.column(S.JET_MASS).to_numpy(), t.column(S.MJJ).to_numpy())
    # mjj of the signal near the W' mass (3.5 TeV), a few hundred GeV lost out of the R = 1.0 cones
    assert 2800 < np.median(t.column(S.MJJ).to_numpy()[labels == 1]) < 3700
    # one row: decode features, jet index runs 0...0 1...1 and real particles come first
    row = int(np.flatnonzero(labels == 1)[0])
    feats = S.decode_features(t.column(S.FEATURES), 80, len(FEATURE_NAMES))[row]
    n = int(t.column(S.N_PARTICLES).to_numpy()[row])
    jet = feats[:n, FEATURE_NAMES.index("jet_index")]
    assert jet[0] == 0 and (np.diff(jet) >= 0).all() and not feats[n:].any()
    # deterministic: a second conversion writes the same keys and values
    again = pq.read_table(convert_events([str(f) for f in event_files], str(event_dataset) + "2",
                                         max_particles_per_jet=40, progress=False).output)
    assert again.column(S.JET_KEY).to_pylist() == t.column(S.JET_KEY).to_pylist()


def test_signal_fraction_and_mjj_window(event_files, tmp_path):
    s = convert_events([str(f) for f in event_files], str(tmp_path / "mix"), max_particles_per_jet=20,
                       signal_fraction=0.1, progress=False)
    t = pq.read_table(s.output)
    labels = t.column(S.LABEL).to_numpy()
    assert 0 <= (labels == 1).sum() <= 15 and (labels == 0).sum() > 30
    w = convert_events([str(f) for f in event_files], str(tmp_path / "win"), max_particles_per_jet=20,
                       mjj_window=(3000.0, 4000.0), progress=False)
    mjj = pq.read_table(w.output).column(S.MJJ).to_numpy()
    assert ((mjj > 3000) & (mjj < 4000)).all()


def test_bad_inputs_one_line_and_nothing_written(event_files, tmp_path):
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("df/block0_values", data=np.zeros((3, 10)))
    with pytest.raises(ConversionError, match=r"bad.h5: '/df/block0_values' has shape \(3, 10\)"):
        convert_events([str(bad)], str(tmp_path / "o1"), progress=False)
    nan = tmp_path / "nan.h5"
    parts = np.zeros((2, 700, 3))
    parts[:, 0] = (1500.0, 0.1, 0.2)
    parts[1, 3, 1] = np.nan
    lhco.write_events(nan, parts, np.zeros(2))
    with pytest.raises(ConversionError, match="nan.h5: NaN/inf in particle 3 eta at row 1"):
        read_events(str(nan), 0, 2)
    with pytest.raises(ConversionError, match="nan.h5: NaN/inf in particle 3 eta at row 1"):
        convert_events([str(event_files[0]), str(nan)], str(tmp_path / "o2"), progress=False)
    lab = tmp_path / "label.h5"
    lhco.write_events(lab, np.abs(np.nan_to_num(parts)), np.array([0.0, 2.0]))
    with pytest.raises(ConversionError, match="label.h5: label 2.0 at row 1 is not 0 or 1"):
        convert_events([str(lab)], str(tmp_path / "o3"), progress=False)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()
    assert not list(tmp_path.glob(".o*"))  # no temporary directory left behind


def test_two_epoch_training_in_event_mode(event_dataset, tmp_path, monkeypatch, capsys):
    from ucluster.config import load_config
    from ucluster.train.trainer import train

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = load_config(None, {
        "data.path": str(event_dataset), "data.level": "event", "data.classes": "background,signal",
        "data.mass_min": 0.0, "data.mass_max": 1.0e5, "data.max_particles": 80, "data.shuffle_buffer": 256,
        "model.k": 6, "model.gap1_channels": 8, "model.gap2_channels": 8, "model.gap2_heads": 2,
        "model.point_channels": "16,16", "model.latent_dim": 16, "model.head_units": "16", "model.dropout": 0.0,
        "model.n_clusters": 4, "model.target": "joint_bins", "model.target_vars": "m_j1,m_j2",
        "model.target_bins": "4,4", "model.target_jet_mass_max": 400.0,
        "train.batch_size": 16, "train.pretrain_epochs": 1, "train.epochs": 2, "train.kmeans_sample": 100,
        "train.kmeans_space": "latent",  # as conf/anomaly.yaml
        "run.output_dir": str(tmp_path / "run"), "run.np": -1, "run.progress": False,
        "run.registered_model": "",
    })
    result = train(cfg)
    assert 0.0 <= result["test_cluster_acc"] <= 1.0 and result["run_id"]

    # the anomaly report of the trained model, with the k-means baseline at two k on the same events
    from jobs import evaluate as evaluate_job
    from ucluster.inference.anomaly import baseline_reports

    out = tmp_path / "report"
    rc = evaluate_job.main(["--model", f"runs:/{result['run_id']}", "--data", str(event_dataset), "--anomaly",
                            "--split", "all", "--tracking-uri", str(tmp_path / "run"), "--run", result["run_id"],
                            "--out", str(out), "--baseline-clusters", "model,2"])
    assert rc == 0
    t = pq.read_table(event_dataset, columns=[S.JET_KEY, S.M_J1, S.M_J2, S.TAU21_J1, S.TAU21_J2, S.LABEL, S.MJJ])
    t = t.sort_by(S.JET_KEY)  # the job fits the baseline in key order
    *obs, labels, mjj = (t.column(c).to_numpy() for c in t.column_names[1:])
    expected = baseline_reports(*obs, labels, mjj, [2, 4])
    import json

    import mlflow

    logged = json.loads((out / "clusters.json").read_text())["kmeans_baselines"]
    assert sorted(logged) == ["2", "4"]
    for k in (2, 4):
        assert [r["events"] for r in logged[str(k)]["clusters"]] == [r["events"] for r in expected[k].clusters]
    from ucluster.inference.model_source import store_uri

    metrics = mlflow.MlflowClient(store_uri(str(tmp_path / "run"))).get_run(result["run_id"]).data.metrics
    assert metrics["anomaly_all_baseline_k4_enriched_signal_fraction"] == pytest.approx(
        expected[4].enriched_signal_fraction)
    rc = evaluate_job.main(["--model", f"runs:/{result['run_id']}", "--data", str(event_dataset), "--anomaly",
                            "--split", "all", "--tracking-uri", str(tmp_path / "run"), "--no-mlflow",
                            "--out", str(tmp_path / "r3"), "--baseline-clusters", "x"])
    assert rc == 2 and not (tmp_path / "r3").exists()
    capsys.readouterr()
    rc = evaluate_job.main(["--model", f"runs:/{result['run_id']}", "--data", str(event_dataset), "--anomaly",
                            "--split", "test", "--tracking-uri", str(tmp_path / "run"), "--no-mlflow",
                            "--out", str(tmp_path / "r4"), "--baseline-clusters", "model,100000"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("error: --baseline-clusters 100000: more clusters than the") and "\n" not in err
    bad = load_config(None, {"data.path": str(event_dataset), "data.max_particles": 80,
                             "data.classes": "background,signal", "run.output_dir": str(tmp_path / "r2")})
    from ucluster.data.loader import JetStream

    with pytest.raises(S.DatasetError, match="data.level=jet but .* is a event-level dataset"):
        JetStream(bad, "train")


def test_shipped_anomaly_config_trains_pretraining_only_and_reports(event_dataset, tmp_path, monkeypatch):
    """conf/anomaly.yaml as it ships, on a tiny model: the tau21 grid target and no deep k-means phase, so the
    clusters are the k-means initialisation on the pretrained latent, and the anomaly report reads them."""
    import json
    from pathlib import Path

    from jobs import evaluate as evaluate_job
    from ucluster.config import load_config
    from ucluster.train.trainer import train

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    conf = Path(__file__).resolve().parents[2] / "conf" / "anomaly.yaml"
    shipped = load_config(str(conf), {})
    assert shipped.train.epochs == shipped.train.pretrain_epochs  # the documented choice (docs/anomaly.md)
    assert shipped.model.target_vars == ["m_j1", "m_j2", "tau21_j1", "tau21_j2"] and shipped.model.n_clusters == 64
    cfg = load_config(str(conf), {
        "data.path": str(event_dataset), "data.max_particles": 80, "data.shuffle_buffer": 256,
        "model.k": 6, "model.gap1_channels": 8, "model.gap2_channels": 8, "model.gap2_heads": 2,
        "model.point_channels": "16,16", "model.latent_dim": 16, "model.head_units": "16", "model.n_clusters": 5,
        "train.batch_size": 16, "train.pretrain_epochs": 1, "train.epochs": 1, "train.kmeans_sample": 100,
        "run.engine": "horovod", "run.output_dir": str(tmp_path / "run"), "run.np": -1, "run.progress": False,
    })
    result = train(cfg)
    assert result["run_id"] and len(result["history"]) == 1
    assert all("cluster_acc" not in k for k in result["history"][0])  # a pretraining epoch, no clustering epoch
    # the clusters are the k-means initialisation, scored after the loop; no deep k-means step ran from it
    assert 0.0 <= result["test_cluster_acc"] <= 1.0 and not any(k.startswith("init_") for k in result)
    out = tmp_path / "report"
    rc = evaluate_job.main(["--model", f"runs:/{result['run_id']}", "--data", str(event_dataset), "--anomaly",
                            "--split", "all", "--tracking-uri", str(tmp_path / "run"), "--no-mlflow",
                            "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "clusters.json").read_text())
    assert len(report["clusters"]) == 5
    assert sum(r["events"] for r in report["clusters"]) == pq.read_table(event_dataset, columns=[S.LABEL]).num_rows


def test_event_conversion_in_local_processes_matches_one_process(event_files, event_dataset, tmp_path):
    pooled = tmp_path / "pooled.parquet"
    convert_events([str(f) for f in event_files], str(pooled), max_particles_per_jet=40, progress=False,
                   processes=2)
    files = {p.relative_to(event_dataset): p.read_bytes() for p in sorted(event_dataset.rglob("*")) if p.is_file()}
    again = {p.relative_to(pooled): p.read_bytes() for p in sorted(pooled.rglob("*")) if p.is_file()}
    assert len(files) > 2 and files == again
