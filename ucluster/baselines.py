"""Reference points for the clustering accuracy, computed by the project's own code on the same jets.

The floor: k-means on the jet mass alone (what a latent that encodes only the mass would reach). The best
mass cuts: thresholds on the jet mass chosen with the true labels, i.e. what the mass alone can do at best
(supervised, one variable). The ceiling is the same network trained on the true labels (``jobs/train.py
--supervised``).

When the dataset has the hls4ml substructure columns, the physics references follow: k-means on the soft-drop
groomed mass (grooming removes soft wide-angle radiation, which sharpens the W/Z/top peaks), on standardised
(m_sd, tau21, tau32) and (m, m_sd, tau21, tau32) (N-subjettiness counts the prongs: 2 for W/Z, 3 for top), and
on the log of the hybrid mass (m_sd where grooming kept both prongs, else m:
:func:`ucluster.data.loader.hybrid_mass`); the best labelled cuts on m_sd and on the hybrid mass; and
gradient-boosted trees trained on the labels of (m, m_sd) and of (m, m_sd, tau21, tau32): how much of the
supervised network's accuracy those few observables already hold (the unsupervised question is then whether
clustering can find it). A method that learns from the constituents should beat what these classic observables
give. :func:`reference_rows` computes them all from one read of the train and test jets.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from ucluster.config import Config
from ucluster.data.loader import SUBSTRUCTURE_KEYS, JetStream, has_substructure, hybrid_mass
from ucluster.train import metrics as M

# name -> (what the row is, in words; "kmeans" or "cuts"; batch keys of the variables), in the printed order
_ROWS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "kmeans_mass": ("k-means on the jet mass", "kmeans", ("mass",)),
    "cuts_mass": ("best cuts on the jet mass (chosen with the true labels)", "cuts", ("mass",)),
    "kmeans_log_mass": ("k-means on log m (the jet mass on a log scale)", "kmeans", ("log_mass",)),
    "kmeans_mass_sd": ("k-means on the soft-drop groomed mass", "kmeans", ("mass_sd",)),
    "kmeans_log_mass_hybrid": ("k-means on log of the hybrid mass (m_sd where soft drop keeps at least "
                               "model.hybrid_sd_fraction of m, else m)", "kmeans", ("log_mass_hybrid",)),
    "kmeans_mass_sd_tau21_tau32": ("k-means on standardised (m_sd, tau21, tau32)", "kmeans",
                                   ("mass_sd", "tau21", "tau32")),
    "kmeans_mass_mass_sd_tau21_tau32": ("k-means on standardised (m, m_sd, tau21, tau32)", "kmeans",
                                        ("mass", "mass_sd", "tau21", "tau32")),
    "cuts_mass_sd": ("best cuts on the soft-drop groomed mass (chosen with the true labels)", "cuts", ("mass_sd",)),
    "cuts_mass_hybrid": ("best cuts on the hybrid mass (chosen with the true labels)", "cuts", ("mass_hybrid",)),
    "trees_mass_mass_sd": ("gradient-boosted trees on (m, m_sd), trained on the true labels", "trees",
                           ("mass", "mass_sd")),
    "trees_mass_mass_sd_tau21_tau32": ("gradient-boosted trees on (m, m_sd, tau21, tau32), trained on the true "
                                       "labels", "trees", ("mass", "mass_sd", "tau21", "tau32")),
}
REFERENCES: dict[str, str] = {name: spec[0] for name, spec in _ROWS.items()}  # name -> description
NO_SUBSTRUCTURE = ("the dataset has no substructure columns (jet_mass_sd, jet_tau21, jet_tau32); "
                   "convert HDF5 files that carry j_mass_mmdt and j_tau1/2/3_b1 to get them")

Jets = dict[str, np.ndarray]  # batch key -> values of the selected jets of one split


def _jets(cfg: Config, split: str) -> Jets:
    """The selected jets of one split: ``label``, ``mass`` and, when the dataset has them, the substructure."""
    # no pretraining target: a config whose target needs the substructure still gets its mass rows (and skipped
    # substructure rows) on a dataset without those columns
    stream = JetStream(cfg, split, targets=False)
    keys = ["label", "mass", *(SUBSTRUCTURE_KEYS if has_substructure(stream.meta) else ())]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for batch in stream.eval_batches(4096):
        valid = batch["valid"] > 0
        for k in keys:
            parts[k].append(batch[k][valid])
    jets = {k: np.concatenate(v) for k, v in parts.items()}
    # derived variables (1 GeV floor under the logs: m_sd can be ~0 where grooming removed everything but one prong)
    jets["log_mass"] = np.log(np.maximum(jets["mass"], 1.0))
    if "mass_sd" in jets:
        jets["mass_hybrid"] = hybrid_mass(jets["mass"], jets["mass_sd"], cfg.model.hybrid_sd_fraction)
        jets["log_mass_hybrid"] = np.log(np.maximum(jets["mass_hybrid"], 1.0))
    return jets


def _masses_and_labels(cfg: Config, split: str) -> tuple[np.ndarray, np.ndarray]:
    jets = _jets(cfg, split)
    return jets["mass"], jets["label"]


def _report(table: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Test metrics of a (clusters, classes) table: accuracy, NMI, ARI and the purity of each class."""
    purity, _ = M.purity_efficiency(table)
    return {**{f"test_{k}": v for k, v in M.clustering_report(table).items()},
            **{f"purity_{c}": float(p) for c, p in zip(classes, purity, strict=True)}}


def kmeans_reference(cfg: Config, train: Jets, test: Jets, variables: tuple[str, ...]) -> dict[str, Any]:
    """Fit k-means (k = model.n_clusters) on the training jets' ``variables``; score the test split. Several
    variables are standardised with the training mean and spread, or the one in GeV would dominate the
    distance; one variable is left as it is (k-means on one variable does not depend on its scale)."""
    from sklearn.cluster import KMeans

    x_train = np.stack([train[v] for v in variables], axis=1)
    x_test = np.stack([test[v] for v in variables], axis=1)
    if len(variables) > 1:
        x_train, x_test = x_train.astype(np.float64), x_test.astype(np.float64)
        mean, std = x_train.mean(axis=0), x_train.std(axis=0)
        std[std == 0] = 1.0
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    km = KMeans(n_clusters=cfg.model.n_clusters, n_init=10, random_state=cfg.train.seed)
    km.fit(x_train)
    classes = list(cfg.data.classes)
    table = M.contingency(km.predict(x_test), test["label"], cfg.model.n_clusters, len(classes))
    return {**_report(table, classes), "train_jets": int(len(x_train)), "test_jets": int(len(x_test))}


def best_cuts(cfg: Config, train: Jets, test: Jets, variable: str, lo: float, hi: float,
              step: float = 1.0) -> dict[str, Any]:
    """The supervised one-variable reference: the ``n_clusters - 1`` thresholds on ``variable`` (on a grid of
    ``step`` over [lo, hi]; values outside count in the first or last bin) that maximise the clustering accuracy
    on the training jets, scored on the test jets. Exhaustive over the grid, so only for 2 or 3 clusters."""
    k = cfg.model.n_clusters
    if k not in (2, 3):
        raise ValueError(f"best cuts: exhaustive search is implemented for 2 or 3 clusters, not {k}")
    classes = list(cfg.data.classes)
    n_classes = len(classes)
    values, label = train[variable], train["label"]
    edges = np.arange(lo, hi + step, step)
    values = np.clip(values, edges[0], edges[-1])
    # below[c, i]: training jets of class c with a value < edges[i]; a cut set splits these counts into bins
    hist = np.stack([np.histogram(values[label == c], edges)[0] for c in range(n_classes)])
    below = np.concatenate([np.zeros((n_classes, 1)), np.cumsum(hist, axis=1)], axis=1)
    best, chosen = -1.0, ()
    for cuts in itertools.combinations(range(1, len(edges) - 1), k - 1):
        bounds = [0, *cuts, len(edges) - 1]
        table = np.stack([below[:, b] - below[:, a] for a, b in itertools.pairwise(bounds)])  # (k, classes)
        acc = M.cluster_accuracy(table)
        if acc > best:
            best, chosen = acc, tuple(float(edges[c]) for c in cuts)
    table = M.contingency(np.digitize(test[variable], chosen), test["label"], k, n_classes)
    return {**_report(table, classes), "cuts_gev": list(chosen), "train_acc": float(best),
            "train_jets": int(len(values)), "test_jets": int(len(test[variable]))}


def trees_reference(cfg: Config, train: Jets, test: Jets, variables: tuple[str, ...]) -> dict[str, Any]:
    """The supervised observable ceiling: gradient-boosted trees (scikit-learn's histogram GBDT, seeded) fitted
    on the training jets' ``variables`` and true classes; the test table is (predicted class, class)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    classes = list(cfg.data.classes)
    x_train = np.stack([train[v] for v in variables], axis=1)
    x_test = np.stack([test[v] for v in variables], axis=1)
    model = HistGradientBoostingClassifier(max_iter=200, random_state=cfg.train.seed).fit(x_train, train["label"])
    table = M.contingency(model.predict(x_test), test["label"], len(classes), len(classes))
    return {**_report(table, classes), "train_jets": int(len(x_train)), "test_jets": int(len(x_test))}


def mass_kmeans(cfg: Config) -> dict[str, Any]:
    """Fit k-means (k = model.n_clusters) on the training jets' mass; score the test split."""
    return kmeans_reference(cfg, _jets(cfg, "train"), _jets(cfg, "test"), ("mass",))


def best_mass_cuts(cfg: Config, step_gev: float = 1.0) -> dict[str, Any]:
    """The supervised mass-only reference: the best labelled jet-mass cuts over the selection window
    (:func:`best_cuts`); only for 2 or 3 clusters."""
    if cfg.model.n_clusters not in (2, 3):  # before reading any jet
        raise ValueError(f"best_mass_cuts: exhaustive search is implemented for 2 or 3 clusters, "
                         f"not {cfg.model.n_clusters}")
    return best_cuts(cfg, _jets(cfg, "train"), _jets(cfg, "test"), "mass", *cut_range(cfg, "mass"), step_gev)


def cut_range(cfg: Config, variable: str) -> tuple[float, float]:
    """Where the cuts on ``variable`` are searched: the selection window for the jet mass; from 0 to its top for
    the groomed and hybrid masses, which grooming moves below the window (m_sd <= m)."""
    return (cfg.data.mass_min if variable == "mass" else 0.0), cfg.data.mass_max


def reference_rows(cfg: Config, step_gev: float = 1.0) -> dict[str, dict[str, Any]]:
    """Every reference of :data:`REFERENCES`, in that order, on the same jets (train and test each read once).
    A row that cannot be measured holds only ``{"skipped": why}``: the substructure rows on a dataset without
    those columns, the cut rows for more than 3 clusters."""
    train, test = _jets(cfg, "train"), _jets(cfg, "test")
    k = cfg.model.n_clusters
    rows: dict[str, dict[str, Any]] = {}
    for name, (_, kind, variables) in _ROWS.items():
        if any(v not in train for v in variables):
            rows[name] = {"skipped": NO_SUBSTRUCTURE}
        elif kind == "kmeans":
            rows[name] = kmeans_reference(cfg, train, test, variables)
        elif kind == "trees":
            rows[name] = trees_reference(cfg, train, test, variables)
        elif k not in (2, 3):
            rows[name] = {"skipped": f"the exhaustive cut search is for 2 or 3 clusters, not {k}"}
        else:
            (variable,) = variables
            rows[name] = best_cuts(cfg, train, test, variable, *cut_range(cfg, variable), step_gev)
    return rows
