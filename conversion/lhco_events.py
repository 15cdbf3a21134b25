"""LHC Olympics R&D-layout events (``ucluster.lhco``) -> the Parquet dataset form, one row per event.

Each event becomes the point cloud of the constituents of its two leading anti-kT R = 1.0 jets (jet 1's
hardest ``max_particles_per_jet`` first, then jet 2's, then zero padding), with per particle:

* ``deta``, ``dphi``: eta and phi relative to the particle's own jet axis; jet 2's ``dphi`` is shifted by
  :data:`JET2_OFFSET` (> 2R) so the model's k-NN graph on (deta, dphi) links particles of the same jet only,
  while each jet still sits in its own local frame;
* ``log_pt``, ``log_e``, ``log_ptrel``, ``log_erel`` (relative to the jet), ``delta_r`` (to the jet axis),
  ``jet_index`` (0 or 1).

Per event the dataset keeps the leading jet's pT and eta (``jet_pt``, ``jet_eta``), the dijet mass in
``jet_mass`` and the event columns ``mjj``, ``m_j1``, ``m_j2`` (jets ordered by mass, heavier first, as in the
LHCO literature), ``tau21_j1``, ``tau21_j2`` (N-subjettiness, beta = 1, R0 = 1.0). The label is 0 (background)
or 1 (signal). Keys and splits come from the file name and row exactly as for jets, so re-running gives the
same dataset. Optionally the signal is thinned to a given fraction of the events (an injected-signal mixture,
decided per event by its key, so the same events are kept every time) and an m_jj window is applied.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from functools import partial

import fastjet
import h5py
import numpy as np
import pyarrow as pa

from conversion.convert import (
    DEFAULT_FRACTIONS,
    ConversionSummary,
    _check_fractions,
    _SplitWriters,
    assign_splits,
    jet_keys,
    merge_task_counts,
    run_local,
)
from conversion.hls4ml_reader import ConversionError, check_hdf5, resolve_inputs
from ucluster import lhco
from ucluster.atomic import OutputExistsError, atomic_directory
from ucluster.data import schema as S
from ucluster.sim.substructure import nsubjettiness

JET_R = 1.0
JET2_OFFSET = 3.0
FEATURE_NAMES = ["deta", "dphi", "log_pt", "log_e", "log_ptrel", "log_erel", "delta_r", "jet_index"]
CHUNK_ROWS = 1024


@dataclass(frozen=True)
class EventTask:
    file_index: int
    chunk_index: int
    path: str
    start: int
    stop: int


def inspect_events(path: str) -> int:
    """Number of events of one R&D-layout file, after checking the layout (not the values)."""
    check_hdf5(path)
    try:
        with h5py.File(path, "r") as f:
            if lhco.KEY not in f or lhco.VALUES not in f[lhco.KEY]:
                raise ConversionError(f"{path}: missing dataset '/{lhco.KEY}/{lhco.VALUES}' (not the LHCO R&D "
                                      "layout: a pandas fixed-format frame under key 'df')")
            ds = f[lhco.KEY][lhco.VALUES]
            if ds.ndim != 2 or ds.shape[1] != lhco.N_COLUMNS:
                raise ConversionError(f"{path}: '/{lhco.KEY}/{lhco.VALUES}' has shape {ds.shape}, expected "
                                      f"(N, {lhco.N_COLUMNS}) = 700 x (pT, eta, phi) + label")
            if ds.shape[0] == 0:
                raise ConversionError(f"{path}: holds no events")
            return int(ds.shape[0])
    except ConversionError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise ConversionError(f"{path}: cannot be read as HDF5 ({str(exc).splitlines()[0]}); truncated?") from None


def read_events(path: str, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows [start, stop): particles (n, 700, 3) float64 and labels (n,) int8, checked for NaN/inf and labels."""
    try:
        with h5py.File(path, "r") as f:
            values = f[lhco.KEY][lhco.VALUES][start:stop].astype(np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise ConversionError(f"{path} rows {start}-{stop - 1}: read failed ({str(exc).splitlines()[0]})") from None
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        what = "label" if col == lhco.LABEL_COLUMN else f"particle {col // 3} {('pT', 'eta', 'phi')[col % 3]}"
        raise ConversionError(f"{path}: NaN/inf in {what} at row {start + row}")
    labels = values[:, lhco.LABEL_COLUMN]
    wrong = ~np.isin(labels, (0.0, 1.0))
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise ConversionError(f"{path}: label {float(labels[row])} at row {start + row} is not 0 or 1")
    particles = values[:, : 3 * lhco.MAX_PARTICLES].reshape(-1, lhco.MAX_PARTICLES, 3)
    if (particles[:, :, 0] < 0).any():
        row = int(np.argwhere(particles[:, :, 0] < 0)[0][0])
        raise ConversionError(f"{path}: negative particle pT at row {start + row}")
    return particles, labels.astype(np.int8)


def file_labels(path: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f[lhco.KEY][lhco.VALUES][:, lhco.LABEL_COLUMN]


def _wrap(x: np.ndarray) -> np.ndarray:
    return (x + np.pi) % (2.0 * np.pi) - np.pi


def event_record(parts: np.ndarray, jet_def: fastjet.JetDefinition, per_jet: int) -> tuple | None:
    """(features (2 per_jet, F), n_real, columns dict) of one event, or None without two jets."""
    real = parts[parts[:, 0] > 0]
    if len(real) < 2:
        return None
    pt, eta, phi = real[:, 0], real[:, 1], real[:, 2]
    p4 = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], axis=1)
    inputs = []
    for i, row in enumerate(p4):
        pj = fastjet.PseudoJet(*map(float, row))
        pj.set_user_index(i)  # back to the particle's row, to read its (pT, eta, phi) exactly
        inputs.append(pj)
    cs = fastjet.ClusterSequence(inputs, jet_def)
    jets = fastjet.sorted_by_pt(cs.inclusive_jets(0.0))
    if len(jets) < 2:
        return None
    feats = np.zeros((2 * per_jet, len(FEATURE_NAMES)), np.float32)
    n = 0
    info = []
    for j, jet in enumerate(jets[:2]):
        idx = np.array([c.user_index() for c in jet.constituents()], np.int64)
        idx = idx[np.argsort(-pt[idx], kind="stable")]
        jpt, jeta, jphi, je = jet.pt(), jet.eta(), jet.phi_std(), jet.E()
        tau1, tau2 = nsubjettiness(p4[idx], 2, JET_R)
        info.append((jet.m(), tau2 / tau1 if tau1 > 0 else 0.0))
        keep = idx[:per_jet]
        deta = eta[keep] - jeta
        dphi = _wrap(phi[keep] - jphi)
        e = p4[keep, 3]
        block = np.stack([deta, dphi + j * JET2_OFFSET, np.log(pt[keep]), np.log(e), np.log(pt[keep] / jpt),
                          np.log(e / je), np.hypot(deta, dphi), np.full(len(keep), float(j))], axis=1)
        feats[n:n + len(keep)] = block
        n += len(keep)
    j1, j2 = jets[0], jets[1]
    dijet = j1 + j2
    (m_a, t_a), (m_b, t_b) = info if info[0][0] >= info[1][0] else info[::-1]
    cols = {"mjj": dijet.m(), "pt_j1": j1.pt(), "eta_j1": j1.eta(), S.M_J1: m_a, S.M_J2: m_b,
            S.TAU21_J1: t_a, S.TAU21_J2: t_b}
    return feats, n, cols


def convert_events_task(task: EventTask, out_dir: str, meta: S.DatasetMeta, keep_signal: float,
                        mjj_window: tuple[float, float], row_group_size: int, compression: str) -> dict:
    """Convert one row range; returns ``{"counts": ..., "dropped": n}`` or ``{"error": one line}``."""
    writers = None
    try:
        per_jet = meta.n_particles // 2
        jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R)
        schema = S.arrow_schema(meta, optional=True)
        writers = _SplitWriters(task, out_dir, schema, row_group_size, compression)
        counts = {s: [0, 0] for s in S.SPLITS}
        dropped = 0
        source = os.path.basename(task.path)
        for a in range(task.start, task.stop, CHUNK_ROWS):
            b = min(a + CHUNK_ROWS, task.stop)
            particles, labels = read_events(task.path, a, b)
            rows = np.arange(a, b, dtype=np.int64)
            keys = jet_keys(source, rows)
            # thinning uses other bits of the key than the split, so the kept signal is spread over the splits
            u_sig = (keys.view(np.uint64) & np.uint64((1 << 32) - 1)).astype(np.float64) / float(1 << 32)
            take = (labels == 0) | (u_sig < keep_signal)
            out: dict[str, list] = {k: [] for k in ("i", "f", "n", "mjj", "pt", "eta", *S.EVENT_COLUMNS[1:])}
            for i in np.flatnonzero(take):
                rec = event_record(particles[i], jet_def, per_jet)
                if rec is None or not mjj_window[0] < rec[2]["mjj"] < mjj_window[1]:
                    dropped += 1
                    continue
                f, n, c = rec
                out["i"].append(i)
                out["f"].append(f)
                out["n"].append(n)
                out["mjj"].append(c["mjj"])
                out["pt"].append(c["pt_j1"])
                out["eta"].append(c["eta_j1"])
                for name in S.EVENT_COLUMNS[1:]:
                    out[name].append(c[name])
            if not out["i"]:
                continue
            sel = np.array(out["i"], np.int64)
            split_idx = assign_splits(keys[sel], meta.split_fractions)
            feats = np.stack(out["f"])
            f32 = {k: np.asarray(out[k], np.float32) for k in ("mjj", "pt", "eta", *S.EVENT_COLUMNS[1:])}
            for si, split in enumerate(S.SPLITS):
                m = np.flatnonzero(split_idx == si)
                if not m.size:
                    continue
                writers.add(split, pa.table({
                    S.JET_KEY: keys[sel][m], S.FEATURES: S.encode_features(feats[m]),
                    S.N_PARTICLES: np.asarray(out["n"], np.int16)[m], S.LABEL: labels[sel][m],
                    S.JET_PT: f32["pt"][m], S.JET_ETA: f32["eta"][m], S.JET_MASS: f32["mjj"][m],
                    S.MJJ: f32["mjj"][m], **{c: f32[c][m] for c in S.EVENT_COLUMNS[1:]},
                    S.SOURCE_FILE: pa.array([source] * m.size, pa.string()), S.SOURCE_ROW: rows[sel][m],
                }, schema=schema))
                counts[split][0] += int((labels[sel][m] == 0).sum())
                counts[split][1] += int((labels[sel][m] == 1).sum())
        writers.close()
        return {"counts": {s: {lhco.CLASS_NAMES[k]: v for k, v in enumerate(c) if v} for s, c in counts.items()
                           if any(c)}, "dropped": dropped}
    except ConversionError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one line naming the rows
        return {"error": f"{task.path} rows {task.start}-{task.stop - 1}: {type(exc).__name__}: {exc}"}
    finally:
        if writers is not None:
            writers.abort()


def convert_events(inputs: str | list[str], output: str, spark=None, fractions: dict[str, float] | None = None,
                   max_particles_per_jet: int = 100, signal_fraction: float | None = None,
                   mjj_window: tuple[float, float] = (0.0, float("inf")), rows_per_task: int = 4096,
                   row_group_size: int = 4096, compression: str = "snappy", overwrite: bool = False,
                   progress: bool = True, processes: int = 1) -> ConversionSummary:
    """Convert R&D-layout event files into an event-level Parquet dataset at ``output``.

    ``signal_fraction`` (e.g. 0.01) thins the signal so that it makes up about that fraction of the events
    read (before the jet and m_jj cuts); None keeps every event. Without ``spark`` the tasks run in this process
    or in ``processes`` local processes. Raises :class:`ConversionError` (one line) on
    a bad input, leaving ``output`` untouched.
    """
    t0 = time.perf_counter()
    fractions = _check_fractions(fractions or DEFAULT_FRACTIONS)
    if max_particles_per_jet < 1 or rows_per_task < 1 or row_group_size < 1:
        raise ConversionError("max_particles_per_jet, rows_per_task and row_group_size must be positive")
    if signal_fraction is not None and not 0.0 < signal_fraction < 1.0:
        raise ConversionError(f"signal_fraction must be in (0, 1), got {signal_fraction}")
    if not mjj_window[0] < mjj_window[1]:
        raise ConversionError(f"m_jj window {mjj_window} is empty")
    if os.path.exists(output) and not overwrite:
        raise ConversionError(f"{output}: output already exists (pass --overwrite to replace it)")
    paths = resolve_inputs(inputs)
    sizes = [inspect_events(p) for p in paths]
    keep_signal = 1.0
    if signal_fraction is not None:
        labels = np.concatenate([file_labels(p) for p in paths])
        n_sig, n_bkg = int((labels == 1).sum()), int((labels == 0).sum())
        if n_sig == 0 or n_bkg == 0:
            raise ConversionError(f"signal_fraction needs signal and background events; inputs hold {n_sig} "
                                  f"signal and {n_bkg} background")
        keep_signal = signal_fraction * n_bkg / ((1.0 - signal_fraction) * n_sig)
        if keep_signal > 1.0:
            raise ConversionError(f"signal_fraction {signal_fraction} needs {keep_signal * n_sig:.0f} signal "
                                  f"events, the inputs hold {n_sig}")
    params = {"row_group_size": row_group_size, "compression": compression, "rows_per_task": rows_per_task,
              "max_particles_per_jet": max_particles_per_jet, "source_format": "lhco_rd",
              "jet_algorithm": f"anti-kt R={JET_R:g}, two leading jets", "jet2_dphi_offset": JET2_OFFSET,
              "signal_fraction": signal_fraction, "signal_keep_probability": keep_signal,
              "mjj_window": list(mjj_window), "mask": "real particles first (jet 1, then jet 2)"}
    meta = S.DatasetMeta(feature_names=list(FEATURE_NAMES), n_particles=2 * max_particles_per_jet,
                         class_names=list(lhco.CLASS_NAMES), split_fractions=fractions, params=params,
                         level="event", event_columns=list(S.EVENT_COLUMNS))
    tasks = []
    for fi, (p, n) in enumerate(zip(paths, sizes, strict=True)):
        for ci, a in enumerate(range(0, n, rows_per_task)):
            tasks.append(EventTask(fi, ci, p, a, min(a + rows_per_task, n)))
    try:
        with atomic_directory(output, overwrite=overwrite) as tmp:
            job = partial(convert_events_task, out_dir=str(tmp), meta=meta, keep_signal=keep_signal,
                          mjj_window=mjj_window, row_group_size=row_group_size, compression=compression)
            if spark is None:
                results = run_local(job, tasks, processes, "convert events", progress)
            else:
                try:
                    results = spark.sparkContext.parallelize(tasks, len(tasks)).map(job).collect()
                except Exception as exc:  # noqa: BLE001
                    raise ConversionError(f"Spark conversion job failed: {str(exc).strip().splitlines()[0]}") from None
            meta.counts = merge_task_counts(results)
            meta.params["events_dropped"] = sum(r["dropped"] for r in results)
            if not meta.counts:
                raise ConversionError(f"no event of {len(paths)} file(s) passed the two-jet and m_jj cuts")
            (tmp / S.META_FILE).write_text(json.dumps(json.loads(meta.to_json()), indent=2, sort_keys=True) + "\n")
    except OutputExistsError as exc:
        raise ConversionError(str(exc)) from None
    total = sum(n for c in meta.counts.values() for n in c.values())
    return ConversionSummary(str(output), len(paths), total, meta.counts, time.perf_counter() - t0)
