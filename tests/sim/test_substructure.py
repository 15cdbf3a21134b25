"""Soft drop and N-subjettiness (fastjet) on hand-made constituents whose answers follow by hand."""

import math

import numpy as np
import pytest

from ucluster.sim.substructure import SUBSTRUCTURE_COLUMNS, nsubjettiness, soft_drop_mass, substructure


def _massless(pt: float, eta: float, phi: float) -> list[float]:
    return [pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta), pt * math.cosh(eta)]


def _mass(p4: np.ndarray) -> float:
    s = p4.sum(axis=0)
    return math.sqrt(max(s[3] ** 2 - s[0] ** 2 - s[1] ** 2 - s[2] ** 2, 0.0))


def _eta_phi(p4: np.ndarray) -> tuple[float, float]:
    s = p4.sum(axis=0)
    return math.asinh(s[2] / math.hypot(s[0], s[1])), math.atan2(s[1], s[0])


# Two hard prongs 0.3 apart in phi (a boosted W-like splitting, z = 400/900) and one soft particle nearer the
# harder prong: C/A merges the prongs first (dR 0.3 < 0.52), so the soft particle is the last branch.
HARD_A, HARD_B = _massless(500.0, 0.0, 0.0), _massless(400.0, 0.0, 0.3)


def test_soft_drop_removes_the_soft_branch_and_keeps_the_prongs():
    p4 = np.array([HARD_A, HARD_B, _massless(10.0, 0.5, 0.05)])
    two_prong = math.sqrt(2 * 500 * 400 * (1 - math.cos(0.3)))  # m^2 = 2 pT1 pT2 (cosh deta - cos dphi)
    assert soft_drop_mass(p4) == pytest.approx(two_prong, rel=1e-9)
    assert _mass(p4) > two_prong + 5  # the soft wide-angle particle adds about 9 GeV to the plain mass
    # z = 150/1050 > z_cut: the branch passes the condition and nothing is groomed
    kept = np.array([HARD_A, HARD_B, _massless(150.0, 0.5, 0.05)])
    assert soft_drop_mass(kept) == pytest.approx(_mass(kept), rel=1e-9)
    # a soft second prong fails too: declustering goes on into the hard one, a single massless particle
    assert soft_drop_mass(np.array([HARD_A, _massless(40.0, 0.0, 0.3)])) == pytest.approx(0.0, abs=1e-6)
    assert soft_drop_mass(np.zeros((0, 4))) == 0.0


def test_nsubjettiness_by_hand():
    single = nsubjettiness(np.array([HARD_A]))
    assert single == [0.0, 0.0, 0.0]  # one particle lies on its own axis
    # Two particles: tau1 about their sum (at eta 0, between them in phi); tau2 = 0 (one axis each)
    two = np.array([HARD_A, HARD_B])
    _, phi_axis = _eta_phi(two)
    tau1 = (500 * phi_axis + 400 * (0.3 - phi_axis)) / (900 * 0.8)
    np.testing.assert_allclose(nsubjettiness(two), [tau1, 0.0, 0.0], rtol=1e-9, atol=1e-12)
    # Three particles: exclusive kT merges the soft one into A (smallest min(pT^2) dR^2), so the two axes are
    # A + soft and B; tau3 = 0. Normalised by sum(pT) * R0, here with R0 = 1.0.
    soft = _massless(10.0, 0.5, 0.05)
    three = np.array([HARD_A, HARD_B, soft])
    eta_as, phi_as = _eta_phi(np.array([HARD_A, soft]))
    tau2 = (500 * math.hypot(eta_as, phi_as) + 10 * math.hypot(0.5 - eta_as, 0.05 - phi_as)) / 910
    eta_all, phi_all = _eta_phi(three)
    tau1 = (500 * math.hypot(eta_all, phi_all) + 400 * math.hypot(eta_all, 0.3 - phi_all)
            + 10 * math.hypot(0.5 - eta_all, 0.05 - phi_all)) / 910
    np.testing.assert_allclose(nsubjettiness(three, r0=1.0), [tau1, tau2, 0.0], rtol=1e-9, atol=1e-12)
    assert tau2 < 0.1 * tau1  # two prongs: tau21 small, the signature the W/Z references use


def test_substructure_columns_and_ratios():
    three = np.array([HARD_A, HARD_B, _massless(10.0, 0.5, 0.05)])
    values = substructure(three, r0=0.8)
    assert tuple(values) == SUBSTRUCTURE_COLUMNS
    t1, t2, t3 = nsubjettiness(three, 3, 0.8)
    assert values["j_mass_mmdt"] == soft_drop_mass(three)
    assert (values["j_tau1_b1"], values["j_tau2_b1"], values["j_tau3_b1"]) == (t1, t2, t3)
    assert values["j_tau21_b1"] == pytest.approx(t2 / t1) and values["j_tau32_b1"] == 0.0  # 0 / t2
    assert substructure(np.array([HARD_A]))["j_tau21_b1"] == 0.0  # 0 where the denominator is 0
