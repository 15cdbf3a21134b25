"""Round 13, CPU: how mixed are the classes locally? For the val jets of a dump written by ``studies.latent_probe
--dump PREFIX`` (every val jet, about a third of each class; the dump's 20 000 training jets were drawn by the capped
read before commit 2aacf41, 20 / 39 / 41 % W / Z / t): the fraction of each jet's 20 nearest neighbours that share
its true class (a diagnostic: it uses labels), in the pretrained latent and in standardised jet observables. It is
not a bound on what a clustering can reach.

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
    evals = np.load(prefix + "_eval.npz")
    val = {k[len("val_"):]: evals[k] for k in evals.files if k.startswith("val_")}
    label = val["label"]
    spaces = {"latent (standardised)": val["latent"],
              "m": val["mass"][:, None], "m_SD": val["mass_sd"][:, None],
              "m, m_SD": np.c_[val["mass"], val["mass_sd"]],
              "m, m_SD, tau21, tau32": np.c_[val["mass"], val["mass_sd"], val["tau21"], val["tau32"]]}
    for name, z in spaces.items():
        print(f"{Path(prefix).name}: {name:<24} k-NN ({NEIGHBOURS}) label agreement {agreement(z, label):.3f}",
              flush=True)
