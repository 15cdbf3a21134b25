"""The mass-only k-means floor on real Pythia W/Z/top jets."""

from ucluster.baselines import mass_kmeans


def test_mass_kmeans_separates_w_and_top_by_mass(tiny_config):
    result = mass_kmeans(tiny_config)
    # W (~80-100 GeV) and Z overlap in mass, top (~175-190) does not: well above chance, well below perfect.
    assert 0.45 < result["test_cluster_acc"] < 0.9
    assert result["purity_t"] > 0.6
    assert result["test_jets"] > 30 and result["train_jets"] > 300


def test_best_mass_cuts_beat_kmeans_boundaries_on_training_jets(tiny_config):
    import numpy as np

    from ucluster.baselines import _masses_and_labels, best_mass_cuts
    from ucluster.train import metrics as M

    result = best_mass_cuts(tiny_config)
    cuts = result["cuts_gev"]
    assert len(cuts) == 2 and tiny_config.data.mass_min < cuts[0] < cuts[1] < tiny_config.data.mass_max
    assert 0.45 < result["test_cluster_acc"] <= 1.0
    # The exhaustive search can only do better than the boundaries k-means draws (up to the 1 GeV grid).
    from sklearn.cluster import KMeans

    mass, label = _masses_and_labels(tiny_config, "train")
    centres = np.sort(KMeans(3, n_init=10, random_state=0).fit(mass[:, None]).cluster_centers_.ravel())
    kmeans_cuts = (centres[:-1] + centres[1:]) / 2
    kmeans_acc = M.cluster_accuracy(M.contingency(np.digitize(mass, kmeans_cuts), label, 3, 3))
    assert result["train_acc"] >= kmeans_acc - 0.01


def test_reference_rows_on_the_substructure_columns(tiny_config):
    """Every reference on the same jets; the groomed mass separates W from Z better than the plain mass."""
    from ucluster.baselines import REFERENCES, best_mass_cuts, reference_rows

    rows = reference_rows(tiny_config)
    assert list(rows) == list(REFERENCES)
    assert rows["kmeans_mass"] == mass_kmeans(tiny_config)  # the old entry points give the same rows
    assert rows["cuts_mass"] == best_mass_cuts(tiny_config)
    for name, row in rows.items():
        assert "skipped" not in row, name
        assert 0.33 < row["test_cluster_acc"] <= 1.0 and -1 <= row["test_ari"] <= 1 and 0 <= row["test_nmi"] <= 1
        assert all(0 <= row[f"purity_{c}"] <= 1 for c in tiny_config.data.classes), name
        assert (row["train_jets"], row["test_jets"]) == (rows["kmeans_mass"]["train_jets"],
                                                         rows["kmeans_mass"]["test_jets"]), name
    cuts = rows["cuts_mass_sd"]["cuts_gev"]
    assert len(cuts) == 2 and 0 <= cuts[0] < cuts[1] <= tiny_config.data.mass_max
    # W and Z groomed masses peak near 80 and 91 GeV, with narrower peaks than the plain masses (~97 and ~110)
    assert rows["cuts_mass_sd"]["train_acc"] > rows["cuts_mass"]["train_acc"] + 0.02
    assert rows["kmeans_mass_sd"]["purity_t"] > 0.6
    # the hybrid mass takes the sharp m_sd peak where grooming kept both prongs and m where it did not: its
    # labelled cuts beat those on m
    assert rows["cuts_mass_hybrid"]["train_acc"] > rows["cuts_mass"]["train_acc"]
    # trees trained on the labels of (m, m_sd) beat the labelled cuts on either mass alone
    assert rows["trees_mass_mass_sd"]["test_cluster_acc"] > rows["cuts_mass"]["test_cluster_acc"]


def test_substructure_rows_are_skipped_without_the_columns(pythia_h5_dir, tiny_config, tmp_path, capsys):
    import json

    import h5py
    import numpy as np

    from conversion.convert import convert
    from jobs import baselines as job
    from ucluster import hls4ml
    from ucluster.baselines import NO_SUBSTRUCTURE, REFERENCES, reference_rows

    drop = {"j_mass_mmdt", "j_tau1_b1", "j_tau2_b1", "j_tau3_b1", "j_tau21_b1", "j_tau32_b1"}
    for kind in ("w", "z", "t"):  # the same jets (same file names, so the same split) without the columns
        with h5py.File(pythia_h5_dir / f"{kind}.h5") as src, h5py.File(tmp_path / f"{kind}.h5", "w") as dst:
            names = [n.decode() for n in src[hls4ml.JET_NAMES][()]]
            keep = [i for i, n in enumerate(names) if n not in drop]
            dst[hls4ml.CONSTITUENTS] = src[hls4ml.CONSTITUENTS][()]
            dst[hls4ml.PARTICLE_NAMES] = src[hls4ml.PARTICLE_NAMES][()]
            dst[hls4ml.JETS] = src[hls4ml.JETS][()][:, keep]
            dst[hls4ml.JET_NAMES] = np.array([names[i].encode() for i in keep])
    data = tmp_path / "plain.parquet"
    convert(str(tmp_path), data, progress=False, row_group_size=64)
    floor = mass_kmeans(tiny_config)
    tiny_config.data.path = str(data)
    rows = reference_rows(tiny_config)
    assert rows["kmeans_mass"] == floor and "cuts_gev" in rows["cuts_mass"]
    assert {n for n, r in rows.items() if r == {"skipped": NO_SUBSTRUCTURE}} == set(REFERENCES) - {
        "kmeans_mass", "kmeans_log_mass", "cuts_mass"}
    tiny_config.model.target = "mass_hybrid_bins"  # a training target that needs m_SD: the references read none
    assert reference_rows(tiny_config) == rows
    tiny_config.model.n_clusters = 4  # cuts: exhaustive search only for 2 or 3 clusters
    rows = reference_rows(tiny_config)
    assert "skipped" in rows["cuts_mass"] and "test_cluster_acc" in rows["kmeans_mass"]

    capsys.readouterr()
    assert job.main(["--data", str(data)]) == 0
    out, printed, decoder = capsys.readouterr().out.strip(), [], json.JSONDecoder()
    while out:  # one indented JSON object per row
        row, end = decoder.raw_decode(out)
        printed.append(row)
        out = out[end:].strip()
    assert [p["name"] for p in printed] == list(REFERENCES)
    assert sum("skipped" in p for p in printed) == len(REFERENCES) - 3 and "substructure" in printed[-1]["skipped"]
