"""The latent probe on the session's trained tiny model: real latents, real probes, the dump round-trips."""

from __future__ import annotations

import json

import numpy as np

from studies import latent_probe


def test_latent_probe_reports_and_dumps(trained, tmp_path, capsys):
    out = tmp_path / "probe.json"
    dump = tmp_path / "lat"
    cfg = trained.cfg
    rc = latent_probe.main(["--model", str(trained.model_path), "--data", cfg.data.path, "--train-jets", "400",
                            "--dims", "2,3", "--json", str(out), "--dump", str(dump),
                            "--data.max_particles", str(cfg.data.max_particles)])
    assert rc == 0
    figures = json.loads(out.read_text())
    for key in ("linear_probe", "model_clusters", "kmeans_latent", "kmeans_pca2", "gmm_pca3", "neighbourhood_purity"):
        assert 1 / 3 - 0.05 <= figures[key] <= 1.0, key  # accuracies of 3 balanced-ish classes
    assert len(figures["pca_explained"]) == 2 and 0 < figures["pca_explained"][0] <= figures["pca_explained"][1] <= 1
    train, evals = np.load(f"{dump}_train.npz"), np.load(f"{dump}_eval.npz")
    assert train["latent"].dtype == np.float16 and len(train["latent"]) == figures["train_jets"]
    assert len(evals["test_label"]) == figures["test_jets"] and "val_latent" in evals.files
    assert {"mass", "mass_sd", "tau21", "tau32"} <= set(train.files)  # the simulator writes the observables
    assert "linear_probe" in capsys.readouterr().out


def test_latent_probe_names_a_missing_model(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        latent_probe.main(["--model", str(tmp_path / "nope.keras"), "--data", str(tmp_path)])
    assert "nope.keras: no such file" in capsys.readouterr().err
