"""Per-particle UCluster inputs computed from hls4ml constituent columns (pure numpy, no I/O).

The network sees, per particle: Δη, Δφ (the graph coordinates, always first), log pT, log E, log(pT/pT_jet),
log(E/E_jet), ΔR, cos θ_rel, and a one-hot particle type when the file carries ``j1_pdgid``. Padded
particles (pT = 0) get zeros in every feature and mask 0, so a log never sees a zero.
"""

from __future__ import annotations

import numpy as np

# Output feature name -> (hls4ml column, transform). "log" columns are log-transformed where real.
BASE_FEATURES: tuple[tuple[str, str, bool], ...] = (
    ("deta", "j1_etarel", False),
    ("dphi", "j1_phirel", False),
    ("log_pt", "j1_pt", True),
    ("log_e", "j1_e", True),
    ("log_ptrel", "j1_ptrel", True),
    ("log_erel", "j1_erel", True),
    ("delta_r", "j1_deltaR", False),
)
OPTIONAL_FEATURES: tuple[tuple[str, str, bool], ...] = (("costheta_rel", "j1_costhetarel", False),)
PID_COLUMN = "j1_pdgid"
# One-hot particle types (the ParticleNet convention) built from |pdgid|.
PID_FEATURES: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("is_electron", (11,)),
    ("is_muon", (13,)),
    ("is_photon", (22,)),
    ("is_charged_hadron", (211, 321, 2212)),
    ("is_neutral_hadron", (130, 310, 2112)),
)


class NonFiniteSteering(ValueError):
    """A column that steers the computation (pT decides the mask, pdgid the type) holds NaN/inf; ``column``
    names it. Raised before anything is computed from it: a NaN pT would otherwise silently become padding."""

    def __init__(self, column: str):
        super().__init__(f"NaN/inf in '{column}'")
        self.column = column


def feature_plan(particle_names: list[str]) -> tuple[list[str], list[str]]:
    """Output feature names and the hls4ml columns they need, for a file with these particle columns."""
    names = [name for name, _, _ in BASE_FEATURES]
    needed = [col for _, col, _ in BASE_FEATURES] + ["j1_pt"]
    for name, col, _ in OPTIONAL_FEATURES:
        if col in particle_names:
            names.append(name)
            needed.append(col)
    if PID_COLUMN in particle_names:
        names += [name for name, _ in PID_FEATURES]
        needed.append(PID_COLUMN)
    return names, sorted(set(needed), key=needed.index)


def compute_features(
    constituents: np.ndarray, particle_names: list[str], feature_names: list[str], max_particles: int,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (features (N, P, F) float32, n_particles (N,) int16) for ``feature_names`` from :func:`feature_plan`.

    ``out``, if given, is a float32 buffer of at least N rows of (P, F) to write into (reused across calls it
    saves the kernel's page faults and zeroing of a fresh allocation). Raises :class:`NonFiniteSteering` if
    pT (or pdgid) holds NaN/inf; NaN/inf in any other column used comes out as NaN/inf in the features (the
    caller checks those).

    ``constituents`` is the file's (N, P_file, len(particle_names)) block. Real particles are those with
    pT > 0; they are moved to the front (stable, so the file's pT order is kept) and the first
    ``max_particles`` are used.
    """
    col = {name: i for i, name in enumerate(particle_names)}
    pt = np.ascontiguousarray(constituents[:, :, col["j1_pt"]])  # one strided pass, then contiguous checks
    if not np.isfinite(pt).all():
        raise NonFiniteSteering("j1_pt")
    if PID_COLUMN in col and not np.isfinite(constituents[:, :, col[PID_COLUMN]]).all():
        raise NonFiniteSteering(PID_COLUMN)
    real = pt > 0
    if not np.all(real[:, :-1] | ~real[:, 1:]):  # padding not only at the end: compact real particles first
        order = np.argsort(~real, axis=1, kind="stable")
        constituents = np.take_along_axis(constituents, order[:, :, None], axis=1)
        real = np.take_along_axis(real, order, axis=1)
    constituents = constituents[:, :max_particles]
    real = real[:, :max_particles]
    n, p = real.shape
    transforms = {name: (col[column], is_log) for name, column, is_log in BASE_FEATURES + OPTIONAL_FEATURES}
    direct = [name for name in feature_names if name in transforms]
    pid_names = feature_names[len(direct):]
    if direct != feature_names[: len(direct)] or any(name not in dict(PID_FEATURES) for name in pid_names):
        raise ValueError(f"feature order {feature_names} is not the one feature_plan() gives")
    source = [transforms[name][0] for name in direct]
    # Runs of consecutive outputs with the same transform, so each is one ufunc call on a slice (no masks).
    runs: list[tuple[int, int, bool]] = []
    for j, name in enumerate(direct):
        is_log = transforms[name][1]
        if runs and runs[-1][2] == is_log:
            runs[-1] = (runs[-1][0], j + 1, is_log)
        else:
            runs.append((j, j + 1, is_log))
    shape = (n, p, len(feature_names))
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.dtype != np.float32 or out.shape[1:] != shape[1:] or len(out) < n or not out.flags.c_contiguous:
        raise ValueError(f"out buffer of shape {out.shape} ({out.dtype}) cannot hold features of shape {shape}")
    else:
        out = out[:n]
    values = np.empty((len(direct), min(n, _BLOCK), p), dtype=np.float32)
    for start in range(0, n, _BLOCK):
        # A block at a time, feature-major: every pass runs over contiguous memory that stays in cache. The
        # column copies in and out are done one feature at a time: measured 1.3x (in) and 2.6x (out) faster
        # than one fancy-indexed gather and one transposed copy.
        block = slice(start, start + _BLOCK)
        cons_block, out_block = constituents[block], out[block]
        vals = values[:, : out_block.shape[0]]
        for j, column in enumerate(source):
            vals[j] = cons_block[:, :, column]
        realf = real[block].astype(np.float32)
        for lo, hi, is_log in runs:
            v = vals[lo:hi]
            if is_log:  # log of real particles only: padded slots become log(1) = 0, never log(0)
                np.maximum(v, _TINY, out=v)
                v *= realf
                v += 1.0 - realf
                np.log(v, out=v)
            else:
                v *= realf
        for j in range(len(direct)):
            out_block[:, :, j] = vals[j]
        if pid_names:
            pid = np.abs(np.rint(cons_block[:, :, col[PID_COLUMN]])).astype(np.int64)
            for j, name in enumerate(pid_names, start=len(direct)):
                out_block[:, :, j] = real[block] & np.isin(pid, dict(PID_FEATURES)[name])
    return out, real.sum(axis=1).astype(np.int16)


_BLOCK = 256
_TINY = np.float32(np.finfo(np.float32).tiny)
