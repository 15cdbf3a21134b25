"""The event simulator's kinds: the LHCO-mass signal has the R&D set's jet masses; adding a kind kept the seeds."""

from __future__ import annotations

import fastjet
import numpy as np

from conversion.lhco_events import event_record
from ucluster.data import schema as S
from ucluster.sim.pythia_events import JET_R, LABELS, generate_events, plan_tasks, pythia_settings


def _two_leading_jet_masses(event: np.ndarray) -> list[float]:
    """(heavier, lighter) mass of the two leading R = 1.0 jets, as the event converter computes them."""
    record = event_record(event.astype(np.float64), fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R), 50)
    assert record is not None, "an event without two jets"
    return [record[2][S.M_J1], record[2][S.M_J2]]


def test_lhco_mass_signal_has_a_500_and_a_100_gev_jet():
    events = generate_events("wprime_xy", 8, 5)
    masses = np.array([_two_leading_jet_masses(e) for e in events])
    # X(500) -> qq and Y(100) -> qq in R = 1.0 cones (ungroomed: ISR/UE add some mass; a wide decay can spill)
    assert 400 < np.median(masses[:, 0]) < 650, masses
    assert 60 < np.median(masses[:, 1]) < 200, masses
    assert LABELS["wprime_xy"] == 1 and "24:m0 = 500" in pythia_settings("wprime_xy", 5)
    assert "24:m0 = 500" not in pythia_settings("wprime", 5)  # the W Z signal and QCD keep the SM masses


def test_existing_kinds_keep_their_task_seeds():
    tasks = plan_tasks({"qcd": 2, "wprime": 1, "wprime_xy": 1}, seed=1, events_per_task=1)
    assert [(t.kind, t.seed) for t in tasks] == [("qcd", 100019), ("qcd", 100020), ("wprime", 140019),
                                                 ("wprime_xy", 180019)]
