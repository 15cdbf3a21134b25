"""The mass-only k-means floor on real Pythia W/Z/top jets."""

from ucluster.baselines import mass_kmeans


def test_mass_kmeans_separates_w_and_top_by_mass(tiny_config):
    result = mass_kmeans(tiny_config)
    # W (~80-100 GeV) and Z overlap in mass, top (~175-190) does not: well above chance, well below perfect.
    assert 0.45 < result["test_cluster_acc"] < 0.9
    assert result["purity_t"] > 0.6
    assert result["test_jets"] > 30 and result["train_jets"] > 300
