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
