"""Whole dijet events simulated with Pythia 8, written in the LHC Olympics 2020 R&D layout (``ucluster.lhco``).

Three kinds of events:

* ``qcd``: QCD 2 -> 2 (``HardQCD:all``) with pTHat > 1100 GeV, the background;
* ``wprime``: a W' of 3.5 TeV (``NewGaugeBoson:ffbar2Wprime``) forced to W Z, both bosons forced to quarks:
  two boosted two-prong jets of about 80 and 91 GeV;
* ``wprime_xy``: the LHC Olympics R&D signal's masses, W'(3.5 TeV) -> X(500) Y(100) -> 4 quarks. Pythia has no
  built-in X and Y, so this sample re-masses the W' decay products in its own generator: the W becomes a
  500 GeV and the Z a 100 GeV resonance (both still forced to quarks). Kinematics, two-prong decays and
  hadronisation are what the R&D set's X and Y give; their widths are Pythia's W/Z formulas at those masses.
  Only signal events are generated with these settings, so the QCD background is untouched.

``wprime`` is the harder search (its jet masses sit inside the QCD jet-mass peak); ``wprime_xy`` is the one the
UCluster paper's 1 % -> 28 % figure was measured on.

Every event keeps the visible final-state particles with |eta| < 4 (no detector simulation), the hardest 700 as
(pT, eta, phi), zero-padded, and must pass the trigger-like cut of the R&D set: leading anti-kT R = 1.0 jet
pT > 1.2 TeV (clustered on the massless stored particles, as the converter will). As for the jet simulator,
one Spark task writes one file from its own Pythia seed, so a run is reproducible.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjet
import numpy as np
from tqdm import tqdm

from ucluster import lhco
from ucluster.sim.pythia_jets import MAX_PYTHIA_SEED, _fastjet_banner_to_stderr, _first_line, _make_pythia

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

KINDS: tuple[str, ...] = ("qcd", "wprime", "wprime_xy")  # append only: the index enters task seeds
LABELS = {"qcd": 0, "wprime": 1, "wprime_xy": 1}
ECM_GEV = 13000.0
PTHAT_MIN_GEV = 1100.0
LEADING_JET_PT_MIN_GEV = 1200.0
JET_R = 1.0
MAX_ETA = 4.0
WPRIME_MASS_GEV = 3500.0
LHCO_X_MASS_GEV, LHCO_Y_MASS_GEV = 500.0, 100.0
_NEUTRINOS = frozenset((12, 14, 16))
_HADRONIC = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5", "23:onMode = off", "23:onIfAny = 1 2 3 4 5")
PROCESS_SETTINGS: dict[str, tuple[str, ...]] = {
    "qcd": ("HardQCD:all = on", f"PhaseSpace:pTHatMin = {PTHAT_MIN_GEV:g}"),
    "wprime": ("NewGaugeBoson:ffbar2Wprime = on", f"34:m0 = {WPRIME_MASS_GEV:g}", "Wprime:coup2WZ = 1.0",
               "34:onMode = off", "34:onIfMatch = 23 24", *_HADRONIC),
    "wprime_xy": ("NewGaugeBoson:ffbar2Wprime = on", f"34:m0 = {WPRIME_MASS_GEV:g}", "Wprime:coup2WZ = 1.0",
                  "34:onMode = off", "34:onIfMatch = 23 24", f"24:m0 = {LHCO_X_MASS_GEV:g}",
                  f"23:m0 = {LHCO_Y_MASS_GEV:g}", *_HADRONIC),
}
_COMMON_SETTINGS = (f"Beams:eCM = {ECM_GEV:g}", "Print:quiet = on", "Random:setSeed = on")

# Task seeds: base * _SEED_STRIDE + kind index * _TASKS_PER_KIND + task index (distinct for every triple).
_SEED_STRIDE = 100_019
_TASKS_PER_KIND = 40_000
MAX_BASE_SEED = (MAX_PYTHIA_SEED - len(KINDS) * _TASKS_PER_KIND) // _SEED_STRIDE


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown event kind {kind!r}; expected one of {', '.join(KINDS)}")


def pythia_settings(kind: str, seed: int) -> list[str]:
    """All Pythia settings of one kind and seed; stored in every file so a sample can be regenerated."""
    _check_kind(kind)
    if not 1 <= seed <= MAX_PYTHIA_SEED:
        raise ValueError(f"Pythia seed {seed} outside 1..{MAX_PYTHIA_SEED}")
    return [*_COMMON_SETTINGS, f"Random:seed = {seed}", *PROCESS_SETTINGS[kind]]


def leading_jet_pt(ptetaphi: np.ndarray, jet_def: fastjet.JetDefinition) -> float:
    """pT of the leading anti-kT jet of massless particles given as (pT, eta, phi) rows (padding: pT = 0)."""
    real = ptetaphi[ptetaphi[:, 0] > 0]
    if not len(real):
        return 0.0
    pt, eta, phi = real[:, 0], real[:, 1], real[:, 2]
    inputs = [fastjet.PseudoJet(float(a), float(b), float(c), float(d))
              for a, b, c, d in zip(pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta),
                                    strict=True)]
    cs = fastjet.ClusterSequence(inputs, jet_def)
    jets = cs.inclusive_jets(0.0)
    return max((j.pt() for j in jets), default=0.0)


def generate_events(kind: str, n_events: int, seed: int, progress: bool = False) -> np.ndarray:
    """``n_events`` events of one kind passing the leading-jet cut: (n, 700, 3) float32 (pT, eta, phi).

    The same (kind, seed) always gives the same array.
    """
    _check_kind(kind)
    if n_events < 1:
        raise ValueError(f"n_events must be >= 1, got {n_events}")
    pythia = _make_pythia(pythia_settings(kind, seed))
    jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R)
    _fastjet_banner_to_stderr(jet_def)
    out = np.zeros((n_events, lhco.MAX_PARTICLES, 3), np.float32)
    max_tries, max_failures = 50 * n_events + 1000, 100
    n = tries = failures = 0
    with tqdm(total=n_events, desc=f"{kind} seed={seed}", unit="event", file=sys.stderr,
              disable=not progress) as bar:
        while n < n_events:
            if tries >= max_tries:
                raise RuntimeError(f"only {n} of {n_events} {kind} events passed the cuts in {tries} events")
            tries += 1
            if not pythia.next():
                failures += 1
                if failures > max_failures:
                    raise RuntimeError(f"Pythia failed to generate {failures} of {tries} events")
                continue
            rows = [(p.pT(), p.eta(), p.phi()) for p in pythia.event.particles()
                    if p.isFinal() and p.idAbs() not in _NEUTRINOS and abs(p.eta()) < MAX_ETA]
            if not rows:
                continue
            parts = np.asarray(rows, np.float64)
            parts = parts[np.argsort(-parts[:, 0], kind="stable")][: lhco.MAX_PARTICLES]
            if leading_jet_pt(parts, jet_def) <= LEADING_JET_PT_MIN_GEV:
                continue
            out[n, : len(parts)] = parts
            n += 1
            bar.update(1)
    return out


# ---------------------------------------------------------------------------------------------- Spark


@dataclass(frozen=True)
class EventTask:
    """One Spark task: ``n_events`` events of one kind from one Pythia seed, written to ``file_name``."""

    kind: str
    n_events: int
    seed: int

    @property
    def file_name(self) -> str:
        return f"{self.kind}_seed{self.seed:09d}.h5"


def task_seed(base_seed: int, kind: str, task_index: int) -> int:
    return base_seed * _SEED_STRIDE + KINDS.index(kind) * _TASKS_PER_KIND + task_index


def plan_tasks(events: Mapping[str, int], seed: int = 1, events_per_task: int = 500) -> list[EventTask]:
    """Split each kind's events into tasks of at most ``events_per_task``, each with its own seed."""
    if not events:
        raise ValueError("no event kinds given")
    for kind in events:
        _check_kind(kind)
    if not 1 <= seed <= MAX_BASE_SEED:
        raise ValueError(f"seed must be in 1..{MAX_BASE_SEED}, got {seed}")
    if events_per_task < 1:
        raise ValueError(f"events_per_task must be >= 1, got {events_per_task}")
    tasks = []
    for kind, n_kind in events.items():
        if n_kind < 0:
            raise ValueError(f"events of {kind!r} must be >= 0, got {n_kind}")
        n_tasks = -(-n_kind // events_per_task)
        if n_tasks > _TASKS_PER_KIND:
            raise ValueError(f"{n_tasks} tasks for {kind!r}, at most {_TASKS_PER_KIND}: raise events_per_task")
        for i in range(n_tasks):
            tasks.append(EventTask(kind, min(events_per_task, n_kind - i * events_per_task),
                                   task_seed(seed, kind, i)))
    if not tasks:
        raise ValueError("no events requested")
    return tasks


def run_task(task: EventTask, out_dir: str) -> dict[str, Any]:
    """Generate and write one file; errors come back as a record naming the task."""
    record: dict[str, Any] = {"kind": task.kind, "seed": task.seed, "path": None, "error": None}
    try:
        particles = generate_events(task.kind, task.n_events, task.seed)
        attrs = {
            "generator": "ucluster.sim.pythia_events", "kind": task.kind, "seed": task.seed,
            "n_events": task.n_events, "pythia_version": metadata.version("pythia8mc"),
            "fastjet_version": metadata.version("fastjet"),
            "pythia_settings": "\n".join(pythia_settings(task.kind, task.seed)),
            "selection": f"visible final state |eta|<{MAX_ETA:g}, hardest {lhco.MAX_PARTICLES}; leading anti-kt "
                         f"R={JET_R:g} jet pt>{LEADING_JET_PT_MIN_GEV:g} GeV",
        }
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        labels = np.full(task.n_events, LABELS[task.kind], np.int64)
        record["path"] = str(lhco.write_events(Path(out_dir) / task.file_name, particles, labels, attrs))
    except Exception as exc:  # reported on the driver with the task's kind and seed
        record["error"] = _first_line(exc)
    return record


def simulate_events(spark: SparkSession | None, out_dir: str | os.PathLike[str], events: Mapping[str, int],
                    seed: int = 1, events_per_task: int = 500, overwrite: bool = False,
                    processes: int = 0) -> list[Path]:
    """Simulate events in parallel (Spark tasks, or ``processes`` local processes without Spark); one file and
    one seed per task. Existing files of the same kind and seed are only replaced with ``overwrite=True``."""
    tasks = plan_tasks(events, seed, events_per_task)
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a directory")
    targets = [out / t.file_name for t in tasks]
    existing = [p for p in targets if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds {len(existing)} of the {len(targets)} files of this run "
                              f"(e.g. {existing[0].name}); pass overwrite=True (--overwrite) to replace them")
    out.mkdir(parents=True, exist_ok=True)
    job = partial(run_task, out_dir=str(out))
    try:
        if spark is not None:
            records = spark.sparkContext.parallelize(tasks, len(tasks)).map(job).collect()
        else:  # e.g. a GPU host without a JVM: the same tasks in a process pool
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(max(1, processes or os.cpu_count() or 1)) as pool:
                records = list(tqdm(pool.imap_unordered(job, tasks), total=len(tasks), desc="simulate",
                                    unit="file", file=sys.stderr))
    except Exception as exc:  # a worker died: no record, so no task to name
        _remove_tmp(targets)
        raise RuntimeError(f"event simulation in {out} failed: {_first_line(exc)}") from exc
    failed = [r for r in records if r["error"]]
    if failed:
        _remove_tmp(targets)
        bad = failed[0]
        more = f" (and {len(failed) - 1} more failed tasks)" if len(failed) > 1 else ""
        raise RuntimeError(f"simulation task kind={bad['kind']} seed={bad['seed']} failed: {bad['error']}{more}")
    return sorted(Path(r["path"]) for r in records)


def _remove_tmp(targets: Iterable[Path]) -> None:
    for path in targets:
        path.with_name(path.name + ".tmp").unlink(missing_ok=True)

