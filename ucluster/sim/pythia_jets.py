"""Boosted jets simulated with Pythia 8 and fastjet, written in the hls4ml HDF5 layout.

Writing the hls4ml layout (rather than Parquet directly) means simulated and real hls4ml files go through
the same converter, so the two kinds of input cannot drift apart. One Spark task generates one file from
its own Pythia seed: a run is reproducible, and no two tasks ever share a random stream.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjet
import h5py
import numpy as np
import pythia8mc
from tqdm import tqdm

from ucluster import hls4ml
from ucluster.sim.substructure import SUBSTRUCTURE_COLUMNS, substructure

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

KINDS: tuple[str, ...] = hls4ml.CLASS_NAMES  # ("g", "q", "w", "z", "t"); index = one-hot column
JET_PHI = "j_phi"
JET_MULTIPLICITY = "j_multiplicity"  # all constituents of the jet, also those beyond the P kept
JET_FEATURES: tuple[str, ...] = (
    hls4ml.JET_PT, hls4ml.JET_ETA, JET_PHI, hls4ml.JET_MASS, JET_MULTIPLICITY,
    *SUBSTRUCTURE_COLUMNS, *hls4ml.CLASS_COLUMNS, hls4ml.UNDEFINED_COLUMN,
)

ECM_GEV = 13000.0
PT_MIN_GEV, PT_MAX_GEV = 900.0, 1300.0  # both the pTHat window and the leading-jet window
JET_R = 0.8
MATCH_DR = 0.8  # truth object to jet axis
MAX_PYTHIA_SEED = 900_000_000
_NEUTRINOS = frozenset((12, 14, 16))

# Task seeds: base * _SEED_STRIDE + kind index * _TASKS_PER_KIND + task index. Every (base, kind, task)
# maps to its own Pythia seed because 5 kinds * _TASKS_PER_KIND < _SEED_STRIDE.
_SEED_STRIDE = 100_003
_TASKS_PER_KIND = 20_000
MAX_BASE_SEED = (MAX_PYTHIA_SEED - len(KINDS) * _TASKS_PER_KIND) // _SEED_STRIDE

_COMMON_SETTINGS = (
    f"Beams:eCM = {ECM_GEV:g}",
    f"PhaseSpace:pTHatMin = {PT_MIN_GEV:g}",
    f"PhaseSpace:pTHatMax = {PT_MAX_GEV:g}",
    "Print:quiet = on",
    "Random:setSeed = on",
)
_HADRONIC_W = ("24:onMode = off", "24:onIfAny = 1 2 3 4 5")
# q/g use only the 2->2 QCD processes that can give the wanted parton, which raises the selection efficiency;
# the class is still decided by the flavour of the hard parton matched to the jet.
PROCESS_SETTINGS: dict[str, tuple[str, ...]] = {
    "g": ("HardQCD:gg2gg = on", "HardQCD:qg2qg = on", "HardQCD:qqbar2gg = on"),
    "q": ("HardQCD:qg2qg = on", "HardQCD:qq2qq = on", "HardQCD:qqbar2qqbarNew = on", "HardQCD:gg2qqbar = on"),
    "w": ("WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on", *_HADRONIC_W),
    "z": ("WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on", "WeakZ0:gmZmode = 2",
          "23:onMode = off", "23:onIfAny = 1 2 3 4 5"),
    "t": ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on", *_HADRONIC_W),
}
_TRUTH_IDS: dict[str, frozenset[int]] = {
    "g": frozenset((21,)), "q": frozenset((1, 2, 3)), "w": frozenset((24,)), "z": frozenset((23,)),
    "t": frozenset((6,)),
}
_DECAYING = frozenset(("w", "z", "t"))  # truth = last copy before decay; else the hard parton itself


def pythia_settings(kind: str, seed: int) -> list[str]:
    """All Pythia settings of one kind and seed; stored in every file so a sample can be regenerated."""
    _check_kind(kind)
    if not 1 <= seed <= MAX_PYTHIA_SEED:
        raise ValueError(f"Pythia seed {seed} outside 1..{MAX_PYTHIA_SEED}")
    return [*_COMMON_SETTINGS, f"Random:seed = {seed}", *PROCESS_SETTINGS[kind]]


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown jet kind {kind!r}; expected one of {', '.join(KINDS)}")


def _make_pythia(settings: Sequence[str]) -> pythia8mc.Pythia:
    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        if not pythia.readString(line):
            raise RuntimeError(f"Pythia rejected setting {line!r}")
    if not pythia.init():
        raise RuntimeError("Pythia initialisation failed")
    return pythia


_banner_done = False


def _fastjet_banner_to_stderr(jet_def: fastjet.JetDefinition) -> None:
    """Send fastjet's one-time C++ banner to stderr: it would otherwise land in the stdout of the job."""
    global _banner_done
    if _banner_done:
        return
    _banner_done = True
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):
        return
    try:
        os.dup2(2, 1)
        fastjet.ClusterSequence([fastjet.PseudoJet(1.0, 0.0, 0.0, 1.0)], jet_def)
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _delta_r(eta1: float, phi1: float, eta2: float, phi2: float) -> float:
    dphi = (phi1 - phi2 + math.pi) % (2.0 * math.pi) - math.pi
    return math.hypot(eta1 - eta2, dphi)


def _truth_directions(event: pythia8mc.Event, kind: str) -> list[tuple[float, float]]:
    """(eta, phi) of the truth objects of the 2->2 hard process (event entries 5 and 6)."""
    ids = _TRUTH_IDS[kind]
    found = []
    for i in (5, 6):
        prt = event[i]
        if prt.idAbs() not in ids:
            continue
        if kind in _DECAYING:
            prt = event[prt.iBotCopyId()]  # last copy: after all recoils, just before the decay
        elif prt.statusAbs() != 23:
            continue
        found.append((prt.eta(), prt.phi()))
    return found


@dataclass
class _Jet:
    """One selected jet, as plain numbers: nothing from fastjet outlives its ClusterSequence."""

    p4: np.ndarray  # (n_constituents, 4) px, py, pz, e sorted by pt descending, all constituents
    pt: float
    eta: float
    phi: float
    mass: float
    jet_p4: tuple[float, float, float, float]


def _select_jet(event: pythia8mc.Event, kind: str, jet_def: fastjet.JetDefinition) -> _Jet | None:
    """The leading anti-kT jet if it lies in the pT window and within MATCH_DR of a truth object."""
    truth = _truth_directions(event, kind)
    if not truth:  # q/g events without a parton of the wanted flavour: skip before clustering
        return None
    inputs = [fastjet.PseudoJet(p.px(), p.py(), p.pz(), p.e())
              for p in event.particles() if p.isFinal() and p.idAbs() not in _NEUTRINOS]
    cs = fastjet.ClusterSequence(inputs, jet_def)  # must stay referenced while its jets are read
    jets = cs.inclusive_jets(PT_MIN_GEV)
    if not jets:
        return None
    jet = fastjet.sorted_by_pt(jets)[0]
    pt, eta, phi = jet.pt(), jet.eta(), jet.phi_std()
    if not PT_MIN_GEV < pt < PT_MAX_GEV:
        return None
    if min(_delta_r(eta, phi, t_eta, t_phi) for t_eta, t_phi in truth) >= MATCH_DR:
        return None
    p4 = np.array([(c.px(), c.py(), c.pz(), c.E()) for c in jet.constituents()], dtype=np.float64)
    p4 = p4[np.argsort(-np.hypot(p4[:, 0], p4[:, 1]), kind="stable")]
    return _Jet(p4, pt, eta, phi, jet.m(), (jet.px(), jet.py(), jet.pz(), jet.E()))


def _principal_angle(p4: np.ndarray, eta: float, phi: float) -> float:
    """Angle in the (deta, dphi) plane of the pT-weighted major axis, pointing at the hardest particle."""
    pt = np.hypot(p4[:, 0], p4[:, 1])
    deta = np.arcsinh(p4[:, 2] / pt) - eta
    dphi = (np.arctan2(p4[:, 1], p4[:, 0]) - phi + np.pi) % (2.0 * np.pi) - np.pi
    cxx, cyy, cxy = np.sum(pt * deta * deta), np.sum(pt * dphi * dphi), np.sum(pt * deta * dphi)
    angle = 0.5 * math.atan2(2.0 * cxy, cxx - cyy)
    if math.cos(angle) * deta[0] + math.sin(angle) * dphi[0] < 0.0:
        angle += math.pi
    return angle


def _particle_features(p4: np.ndarray, n_kept: np.ndarray, jet_p4: np.ndarray, jet_eta: np.ndarray,
                       jet_phi: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """(N, P, 16) float32 features in hls4ml.PARTICLE_FEATURES order; padded slots stay all zero."""
    mask = np.arange(p4.shape[1])[None, :] < n_kept[:, None]
    p4 = np.where(mask[..., None], p4, 1.0)  # harmless values in the padding, zeroed again below
    px, py, pz, e = (p4[..., i] for i in range(4))
    jpx, jpy, jpz, je = (jet_p4[:, i, None] for i in range(4))
    pt = np.hypot(px, py)
    p_abs = np.sqrt(px * px + py * py + pz * pz)
    jet_p_abs = np.sqrt(jpx * jpx + jpy * jpy + jpz * jpz)
    eta = np.arcsinh(pz / pt)
    phi = np.arctan2(py, px)
    etarel = eta - jet_eta[:, None]
    phirel = (phi - jet_phi[:, None] + np.pi) % (2.0 * np.pi) - np.pi
    cos_a, sin_a = np.cos(angle)[:, None], np.sin(angle)[:, None]
    columns = {
        "j1_px": px, "j1_py": py, "j1_pz": pz, "j1_e": e,
        "j1_erel": e / je,
        "j1_pt": pt,
        "j1_ptrel": pt / np.hypot(jpx, jpy),
        "j1_eta": eta,
        "j1_etarel": etarel,
        "j1_etarot": cos_a * etarel + sin_a * phirel,
        "j1_phi": phi,
        "j1_phirel": phirel,
        "j1_phirot": -sin_a * etarel + cos_a * phirel,
        "j1_deltaR": np.hypot(etarel, phirel),
        "j1_costheta": pz / p_abs,
        "j1_costhetarel": (px * jpx + py * jpy + pz * jpz) / (p_abs * jet_p_abs),
    }
    out = np.stack([columns[name] for name in hls4ml.PARTICLE_FEATURES], axis=-1)
    out[~mask] = 0.0
    return out.astype(np.float32)


def generate_jets(kind: str, n_jets: int, seed: int, max_particles: int = 100,
                  progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n_jets`` truth-matched jets of one kind: (constituents (n, P, 16), jets (n, M)) float32.

    Columns follow ``hls4ml.PARTICLE_FEATURES`` and ``JET_FEATURES``. The same (kind, seed, max_particles)
    always gives the same arrays.
    """
    _check_kind(kind)
    if n_jets < 1:
        raise ValueError(f"n_jets must be >= 1, got {n_jets}")
    if max_particles < 1:
        raise ValueError(f"max_particles must be >= 1, got {max_particles}")
    pythia = _make_pythia(pythia_settings(kind, seed))
    jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R)
    _fastjet_banner_to_stderr(jet_def)

    p4 = np.zeros((n_jets, max_particles, 4))
    n_kept = np.zeros(n_jets, dtype=np.int64)
    jet_p4 = np.zeros((n_jets, 4))
    angle = np.zeros(n_jets)
    jets = np.zeros((n_jets, len(JET_FEATURES)))
    col = {name: i for i, name in enumerate(JET_FEATURES)}
    jets[:, col[hls4ml.CLASS_COLUMNS[KINDS.index(kind)]]] = 1.0

    max_events, max_failures = 100 * n_jets + 1000, 100
    n = n_events = n_failures = 0
    with tqdm(total=n_jets, desc=f"{kind} seed={seed}", unit="jet", file=sys.stderr,
              disable=not progress) as bar:
        while n < n_jets:
            if n_events >= max_events:
                raise RuntimeError(f"only {n} of {n_jets} jets selected in {n_events} events")
            n_events += 1
            if not pythia.next():
                n_failures += 1
                if n_failures > max_failures:
                    raise RuntimeError(f"Pythia failed to generate {n_failures} of {n_events} events")
                continue
            jet = _select_jet(pythia.event, kind, jet_def)
            if jet is None:
                continue
            k = min(len(jet.p4), max_particles)
            p4[n, :k] = jet.p4[:k]
            n_kept[n] = k
            jet_p4[n] = jet.jet_p4
            angle[n] = _principal_angle(jet.p4, jet.eta, jet.phi)
            jets[n, [col[hls4ml.JET_PT], col[hls4ml.JET_ETA], col[JET_PHI], col[hls4ml.JET_MASS],
                     col[JET_MULTIPLICITY]]] = (jet.pt, jet.eta, jet.phi, jet.mass, len(jet.p4))
            for name, value in substructure(jet.p4, JET_R).items():  # on all constituents, not only the P kept
                jets[n, col[name]] = value
            n += 1
            bar.update(1)
    eta, phi = jets[:, col[hls4ml.JET_ETA]], jets[:, col[JET_PHI]]
    return _particle_features(p4, n_kept, jet_p4, eta, phi, angle), jets.astype(np.float32)


def write_hls4ml_file(path: str | os.PathLike[str], constituents: np.ndarray, jets: np.ndarray,
                      attrs: Mapping[str, Any] | None = None) -> Path:
    """Write one hls4ml-layout file atomically (``<name>.tmp`` then rename): readers never see half a file."""
    path = Path(path)
    n, _, n_features = constituents.shape
    if n_features != len(hls4ml.PARTICLE_FEATURES):
        raise ValueError(f"constituents have {n_features} features, expected {len(hls4ml.PARTICLE_FEATURES)}")
    if jets.shape != (n, len(JET_FEATURES)):
        raise ValueError(f"jets have shape {jets.shape}, expected ({n}, {len(JET_FEATURES)})")
    tmp = path.with_name(path.name + ".tmp")
    try:
        with h5py.File(tmp, "w") as f:
            # gzip: the zero padding of short jets compresses away; any HDF5 reader decodes it.
            f.create_dataset(hls4ml.CONSTITUENTS, data=constituents.astype(np.float32, copy=False),
                             compression="gzip", compression_opts=4, shuffle=True)
            f.create_dataset(hls4ml.PARTICLE_NAMES, data=np.array(hls4ml.PARTICLE_FEATURES, dtype="S"))
            f.create_dataset(hls4ml.JETS, data=jets.astype(np.float32, copy=False))
            f.create_dataset(hls4ml.JET_NAMES, data=np.array(JET_FEATURES, dtype="S"))
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------------------------- Spark


@dataclass(frozen=True)
class SimTask:
    """One Spark task: ``n_jets`` jets of one kind from one Pythia seed, written to ``file_name``."""

    kind: str
    n_jets: int
    seed: int

    @property
    def file_name(self) -> str:
        return f"{self.kind}_seed{self.seed:09d}.h5"


def task_seed(base_seed: int, kind: str, task_index: int) -> int:
    """Pythia seed of one task: deterministic, and distinct across base seeds, kinds and tasks."""
    return base_seed * _SEED_STRIDE + KINDS.index(kind) * _TASKS_PER_KIND + task_index


def plan_tasks(kinds: str | Iterable[str], jets_per_kind: int | Mapping[str, int], seed: int = 1,
               jets_per_task: int = 250) -> list[SimTask]:
    """Split each kind's jets into tasks of at most ``jets_per_task`` jets, each with its own seed."""
    kinds = [k.strip() for k in kinds.split(",")] if isinstance(kinds, str) else list(kinds)
    if not kinds:
        raise ValueError("no jet kinds given")
    for kind in kinds:
        _check_kind(kind)
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"jet kinds repeated: {','.join(kinds)}")
    if isinstance(jets_per_kind, Mapping):
        counts = dict(jets_per_kind)
    else:
        counts = dict.fromkeys(kinds, jets_per_kind)
    if set(counts) != set(kinds):
        raise ValueError(f"jets_per_kind names kinds {sorted(counts)}, but kinds are {kinds}")
    if not 1 <= seed <= MAX_BASE_SEED:
        raise ValueError(f"seed must be in 1..{MAX_BASE_SEED}, got {seed}")
    if jets_per_task < 1:
        raise ValueError(f"jets_per_task must be >= 1, got {jets_per_task}")
    tasks = []
    for kind in kinds:
        n_kind = counts[kind]
        if n_kind < 1:
            raise ValueError(f"jets per kind must be >= 1, got {n_kind} for {kind!r}")
        n_tasks = -(-n_kind // jets_per_task)
        if n_tasks > _TASKS_PER_KIND:
            raise ValueError(f"{n_tasks} tasks for {kind!r}, at most {_TASKS_PER_KIND}: raise jets_per_task")
        for i in range(n_tasks):
            n = min(jets_per_task, n_kind - i * jets_per_task)
            tasks.append(SimTask(kind, n, task_seed(seed, kind, i)))
    return tasks


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def run_task(task: SimTask, out_dir: str, max_particles: int) -> dict[str, Any]:
    """Generate and write one file. Errors come back as a record, so the driver can name the failed task."""
    record: dict[str, Any] = {"kind": task.kind, "seed": task.seed, "path": None, "error": None}
    try:
        constituents, jets = generate_jets(task.kind, task.n_jets, task.seed, max_particles)
        attrs = {
            "generator": "ucluster.sim.pythia_jets",
            "kind": task.kind,
            "seed": task.seed,
            "n_jets": task.n_jets,
            "max_particles": max_particles,
            "pythia_version": metadata.version("pythia8mc"),
            "fastjet_version": metadata.version("fastjet"),
            "pythia_settings": "\n".join(pythia_settings(task.kind, task.seed)),
            "jet_algorithm": f"anti-kt R={JET_R}, leading jet {PT_MIN_GEV:g}<pt<{PT_MAX_GEV:g} GeV, "
                             f"truth dR<{MATCH_DR}, visible final state",
        }
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        record["path"] = str(write_hls4ml_file(Path(out_dir) / task.file_name, constituents, jets, attrs))
    except Exception as exc:  # reported on the driver with the task's kind and seed
        record["error"] = _first_line(exc)
    return record


def simulate_to_hdf5(spark: SparkSession, out_dir: str | os.PathLike[str], kinds: str | Iterable[str],
                     jets_per_kind: int | Mapping[str, int], seed: int = 1, jets_per_task: int = 250,
                     max_particles: int = 100, overwrite: bool = False) -> list[Path]:
    """Simulate jets in parallel Spark tasks (one file and one seed per task); return the files, sorted.

    ``out_dir`` must be visible to the executors (local disk in local mode, a shared file system on a
    cluster). Existing files of the same kind and seed are only replaced with ``overwrite=True``.
    """
    if max_particles < 1:
        raise ValueError(f"max_particles must be >= 1, got {max_particles}")
    tasks = plan_tasks(kinds, jets_per_kind, seed, jets_per_task)
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a directory")
    targets = [out / t.file_name for t in tasks]
    existing = [p for p in targets if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds {len(existing)} of the {len(targets)} files of this run "
                              f"(e.g. {existing[0].name}); pass overwrite=True (--overwrite) to replace them")
    out.mkdir(parents=True, exist_ok=True)

    job = partial(run_task, out_dir=str(out), max_particles=max_particles)
    try:
        records = spark.sparkContext.parallelize(tasks, len(tasks)).map(job).collect()
    except Exception as exc:  # a worker died (crash, OOM): no record, so no task to name
        _remove_tmp(targets)
        raise RuntimeError(f"simulation job in {out} failed: {_first_line(exc)}") from exc
    failed = [r for r in records if r["error"]]
    if failed:
        _remove_tmp(targets)
        bad = failed[0]
        more = f" (and {len(failed) - 1} more failed tasks)" if len(failed) > 1 else ""
        task = f"kind={bad['kind']} seed={bad['seed']}"
        raise RuntimeError(f"simulation task {task} failed: {bad['error']}{more}")
    return sorted(Path(r["path"]) for r in records)


def _remove_tmp(targets: Iterable[Path]) -> None:
    """Drop the partial files of crashed tasks; finished files are complete and stay."""
    for path in targets:
        path.with_name(path.name + ".tmp").unlink(missing_ok=True)


def summarize_files(paths: Iterable[str | os.PathLike[str]]) -> dict[str, tuple[int, float]]:
    """Jets and median jet mass (GeV) per kind over hls4ml-layout files, kinds in ``KINDS`` order."""
    masses: dict[str, list[np.ndarray]] = {}
    for path in paths:
        with h5py.File(path, "r") as f:
            names = [n.decode() for n in f[hls4ml.JET_NAMES][()]]
            jets = f[hls4ml.JETS][()]
        label = np.argmax(jets[:, [names.index(c) for c in hls4ml.CLASS_COLUMNS]], axis=1)
        for i, kind in enumerate(KINDS):
            if np.any(label == i):
                masses.setdefault(kind, []).append(jets[label == i, names.index(hls4ml.JET_MASS)])
    summary = {}
    for kind in KINDS:
        if kind in masses:
            m = np.concatenate(masses[kind])
            summary[kind] = (len(m), float(np.median(m)))
    return summary
