"""Round 13, CPU: how pure are the neighbourhoods that any distance-based clustering builds on? For the training jets
of a dump written by ``studies.latent_probe --dump PREFIX`` (20 000 jets): the fraction of each jet's 20 nearest
neighbours that share its true class (a diagnostic: it uses labels), in the pretrained latent and in standardised
jet observables. A label-free clustering that groups jets with their neighbours is bounded by about this figure.

    .venv/bin/python docs/quality_round13/neighbourhoods.py /tmp/cpu_pre10_lat /tmp/cpu_paper10_lat > neighbourhoods.log
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.neighbors import NearestNeighbors

NEIGHBOURS = 20


def agreement(z: np.ndarray, label: np.ndarray) -> float:
    z = np.nan_to_num(z.astype(np.float64))  # tau ratios are NaN for jets with too few subjets
    std = z.std(0)
    z = (z[:, std > 0] - z.mean(0)[std > 0]) / std[std > 0]  # dead latent units carry nothing
    _, idx = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(z).kneighbors(z)
    return float(np.mean(label[idx[:, 1:]] == label[:, None]))


for prefix in sys.argv[1:]:
    train = np.load(prefix + "_train.npz")
    label = train["label"]
    spaces = {"latent (standardised)": train["latent"],
              "m": train["mass"][:, None], "m_SD": train["mass_sd"][:, None],
              "m, m_SD": np.c_[train["mass"], train["mass_sd"]],
              "m, m_SD, tau21, tau32": np.c_[train["mass"], train["mass_sd"], train["tau21"], train["tau32"]]}
    for name, z in spaces.items():
        print(f"{Path(prefix).name}: {name:<24} k-NN ({NEIGHBOURS}) label agreement {agreement(z, label):.3f}",
              flush=True)
