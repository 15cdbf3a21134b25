"""Jet-substructure observables of the hls4ml files, computed with fastjet from a jet's constituents.

The public hls4ml jet files carry, besides the constituents, classic substructure variables; the simulator
writes the same ones under the same names so that simulated and real files look alike and the baselines
(k-means or cuts on them) can be compared with UCluster on identical jets:

* ``j_mass_mmdt``: the modified-mass-drop groomed mass, i.e. soft drop with beta = 0 and z_cut = 0.1 on the
  Cambridge/Aachen reclustering of the jet (for beta = 0 the angular radius R0 does not enter the condition);
* ``j_tau1_b1``, ``j_tau2_b1``, ``j_tau3_b1``: N-subjettiness with angular exponent 1, axes from exclusive kT
  reclustering, normalised by sum(pT) * R0 with R0 = the jet radius; ``j_tau21_b1`` = tau2/tau1 and
  ``j_tau32_b1`` = tau3/tau2 (0 where the denominator is 0).
"""

from __future__ import annotations

import math

import fastjet
import numpy as np

SOFT_DROP_ZCUT = 0.1
SUBSTRUCTURE_COLUMNS: tuple[str, ...] = (
    "j_mass_mmdt", "j_tau1_b1", "j_tau2_b1", "j_tau3_b1", "j_tau21_b1", "j_tau32_b1",
)
# A radius that merges every constituent of an R = 0.8 jet into one Cambridge/Aachen jet.
_RECLUSTER_R = 10.0


def _pseudojets(p4: np.ndarray) -> list:
    return [fastjet.PseudoJet(float(px), float(py), float(pz), float(e)) for px, py, pz, e in p4]


def soft_drop_mass(p4: np.ndarray, z_cut: float = SOFT_DROP_ZCUT) -> float:
    """Groomed mass (soft drop, beta = 0): decluster the C/A tree, dropping the softer branch while
    min(pT1, pT2) / (pT1 + pT2) <= z_cut; the mass of what is left."""
    if len(p4) == 0:
        return 0.0
    cs = fastjet.ClusterSequence(_pseudojets(p4), fastjet.JetDefinition(fastjet.cambridge_algorithm, _RECLUSTER_R))
    jet = fastjet.sorted_by_pt(cs.inclusive_jets())[0]
    while True:
        a, b = fastjet.PseudoJet(), fastjet.PseudoJet()
        if not jet.has_parents(a, b):
            break
        pa, pb = a.pt(), b.pt()
        if min(pa, pb) / (pa + pb) > z_cut:
            break
        jet = a if pa >= pb else b
    return float(max(jet.m(), 0.0))


def nsubjettiness(p4: np.ndarray, n_max: int = 3, r0: float = 0.8) -> list[float]:
    """tau_1 .. tau_{n_max} (beta = 1) with exclusive-kT axes; tau_N = 0 when the jet has <= N constituents."""
    pt = np.hypot(p4[:, 0], p4[:, 1])
    if len(p4) == 0 or pt.sum() <= 0:
        return [0.0] * n_max
    eta = np.arcsinh(p4[:, 2] / np.maximum(pt, 1e-12))
    phi = np.arctan2(p4[:, 1], p4[:, 0])
    cs = fastjet.ClusterSequence(_pseudojets(p4), fastjet.JetDefinition(fastjet.kt_algorithm, _RECLUSTER_R))
    norm = pt.sum() * r0
    out = []
    for n in range(1, n_max + 1):
        if len(p4) <= n:
            out.append(0.0)
            continue
        axes = cs.exclusive_jets(n)
        dr = np.full(len(p4), np.inf)
        for axis in axes:
            dphi = (phi - axis.phi() + math.pi) % (2 * math.pi) - math.pi
            dr = np.minimum(dr, np.hypot(eta - axis.eta(), dphi))
        out.append(float((pt * dr).sum() / norm))
    return out


def substructure(p4: np.ndarray, r0: float = 0.8) -> dict[str, float]:
    """All of :data:`SUBSTRUCTURE_COLUMNS` for one jet's constituents ``p4`` (n, 4) = px, py, pz, E."""
    t1, t2, t3 = nsubjettiness(p4, 3, r0)
    return {
        "j_mass_mmdt": soft_drop_mass(p4),
        "j_tau1_b1": t1, "j_tau2_b1": t2, "j_tau3_b1": t3,
        "j_tau21_b1": t2 / t1 if t1 > 0 else 0.0,
        "j_tau32_b1": t3 / t2 if t2 > 0 else 0.0,
    }
