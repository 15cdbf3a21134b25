"""Validation and slice reading of hls4ml jet HDF5 files; every column is resolved by name.

Validation reads only shapes and names, so the driver can check every input before a Spark task starts;
the values themselves (NaN/inf) are checked by the task that reads them.

Besides the columns every file needs, the substructure columns of :data:`SUBSTRUCTURE_SOURCES` are read when
asked for. The public hls4ml files store ``j_tau32_b1`` but no ``j_tau21_b1``; a ratio a file lacks is computed
from the taus with the simulator's convention (``ucluster/sim/substructure.py``: 0 where the denominator is 0).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

import h5py
import numpy as np

from ucluster import hls4ml
from ucluster.data import schema as S

# Parquet column <- hls4ml jet column: soft drop with beta = 0, z_cut = 0.1 (= the modified mass drop tagger,
# "mmdt") and N-subjettiness with angular exponent beta = 1 ("b1"), the variables of the hls4ml papers.
SUBSTRUCTURE_SOURCES: dict[str, str] = {
    S.JET_MASS_SD: "j_mass_mmdt", S.JET_TAU1: "j_tau1_b1", S.JET_TAU2: "j_tau2_b1", S.JET_TAU3: "j_tau3_b1",
    S.JET_TAU21: "j_tau21_b1", S.JET_TAU32: "j_tau32_b1",
}
# ratio column -> (numerator, denominator): read when the file stores it, computed otherwise
_RATIOS: dict[str, tuple[str, str]] = {S.JET_TAU21: (S.JET_TAU2, S.JET_TAU1), S.JET_TAU32: (S.JET_TAU3, S.JET_TAU2)}
# what a file needs for the substructure columns (the rest follows from these)
REQUIRED_SUBSTRUCTURE: tuple[str, ...] = tuple(v for k, v in SUBSTRUCTURE_SOURCES.items() if k not in _RATIOS)


class ConversionError(ValueError):
    """A bad input or output, reported as one line that names the file and the problem."""


@dataclass(frozen=True)
class FileInfo:
    path: str
    n_jets: int
    n_particles: int
    particle_names: tuple[str, ...]
    jet_names: tuple[str, ...]

    @property
    def missing_substructure(self) -> tuple[str, ...]:
        """The jet columns of :data:`REQUIRED_SUBSTRUCTURE` this file lacks (empty: it has the substructure)."""
        return tuple(n for n in REQUIRED_SUBSTRUCTURE if n not in self.jet_names)


def resolve_inputs(inputs: str | list[str]) -> list[str]:
    """Expand files, directories (their ``*.h5``/``*.hdf5``) and globs into a sorted, de-duplicated list."""
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    found: list[str] = []
    for item in map(str, items):
        if os.path.isdir(item):
            matches = [p for ext in ("*.h5", "*.hdf5") for p in glob.glob(os.path.join(item, ext))]
            if not matches:
                raise ConversionError(f"{item}: directory holds no .h5/.hdf5 files")
        elif any(ch in item for ch in "*?["):
            matches = glob.glob(item)
            if not matches:
                raise ConversionError(f"{item}: pattern matches no file")
        else:
            if not os.path.exists(item):
                raise ConversionError(f"{item}: no such file")
            matches = [item]
        found += [os.path.abspath(m) for m in matches]
    if not found:
        raise ConversionError("no input files given")
    return sorted(set(found))


def _names(f: h5py.File, key: str, path: str) -> tuple[str, ...]:
    if key not in f:
        raise ConversionError(f"{path}: missing dataset '{key}'")
    raw = f[key][()]
    if np.ndim(raw) != 1:
        raise ConversionError(f"{path}: dataset '{key}' must be a 1-D list of names")
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in raw)


def check_hdf5(path: str) -> None:
    """One line for a file that cannot be HDF5 at all (empty, or another format), before h5py's own error."""
    if os.path.getsize(path) == 0:
        raise ConversionError(f"{path}: empty file")
    if not h5py.is_hdf5(path):
        raise ConversionError(f"{path}: not an HDF5 file")


def inspect_file(path: str) -> FileInfo:
    """Check the layout of one file (datasets, ranks, shapes, required names) without reading the values."""
    check_hdf5(path)
    try:
        with h5py.File(path, "r") as f:
            particle_names = _names(f, hls4ml.PARTICLE_NAMES, path)
            jet_names = _names(f, hls4ml.JET_NAMES, path)
            for key in (hls4ml.CONSTITUENTS, hls4ml.JETS):
                if key not in f or not isinstance(f[key], h5py.Dataset):
                    raise ConversionError(f"{path}: missing dataset '{key}'")
            cons, jets = f[hls4ml.CONSTITUENTS], f[hls4ml.JETS]
            if cons.ndim != 3:
                raise ConversionError(f"{path}: '{hls4ml.CONSTITUENTS}' has rank {cons.ndim}, expected 3 (N, P, F)")
            if jets.ndim != 2:
                raise ConversionError(f"{path}: '{hls4ml.JETS}' has rank {jets.ndim}, expected 2 (N, M)")
            if cons.shape[2] != len(particle_names):
                raise ConversionError(
                    f"{path}: '{hls4ml.CONSTITUENTS}' has {cons.shape[2]} features but "
                    f"'{hls4ml.PARTICLE_NAMES}' names {len(particle_names)}")
            if jets.shape[1] != len(jet_names):
                raise ConversionError(
                    f"{path}: '{hls4ml.JETS}' has {jets.shape[1]} columns but '{hls4ml.JET_NAMES}' names "
                    f"{len(jet_names)}")
            if cons.shape[0] != jets.shape[0]:
                raise ConversionError(
                    f"{path}: {cons.shape[0]} jets in '{hls4ml.CONSTITUENTS}' but {jets.shape[0]} in "
                    f"'{hls4ml.JETS}'")
            if cons.shape[0] == 0:
                raise ConversionError(f"{path}: holds no jets")
            if cons.shape[1] < 1:
                raise ConversionError(f"{path}: '{hls4ml.CONSTITUENTS}' has no particle slots")
            info = FileInfo(path, int(cons.shape[0]), int(cons.shape[1]), particle_names, jet_names)
    except ConversionError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise ConversionError(f"{path}: cannot be read as HDF5 ({_first_line(exc)}); truncated or corrupt?") from None
    from conversion.features import feature_plan  # local: keeps this module free of feature logic

    _, needed = feature_plan(list(particle_names))
    for name in needed:
        if name not in particle_names:
            raise ConversionError(f"{path}: particle feature '{name}' missing from '{hls4ml.PARTICLE_NAMES}'")
    for name in (hls4ml.JET_PT, hls4ml.JET_ETA, hls4ml.JET_MASS, *hls4ml.CLASS_COLUMNS):
        if name not in jet_names:
            raise ConversionError(f"{path}: jet feature '{name}' missing from '{hls4ml.JET_NAMES}'")
    return info


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _contiguous_offset(ds: h5py.Dataset) -> int | None:
    """Byte offset of ``ds`` in its file when its rows can be read as plain bytes (contiguous layout, no
    filters, not external, native numeric type, storage allocated); None otherwise."""
    try:
        plist = ds.id.get_create_plist()
        if plist.get_layout() != h5py.h5d.CONTIGUOUS or plist.get_nfilters() or plist.get_external_count():
            return None
        if not ds.dtype.isnative or ds.dtype.kind not in "fiu":
            return None
        return ds.id.get_offset()
    except (AttributeError, RuntimeError, ValueError, OSError):
        return None


def _read_bytes(path: str, offset: int, shape: tuple[int, ...], dtype: np.dtype, start: int, stop: int,
                buffer: np.ndarray | None = None) -> np.ndarray:
    """Rows [start, stop) of a contiguous dataset by plain file reads, which (unlike h5py's reads) release the
    GIL: the converter's reader thread then overlaps with the feature computation. Reads into ``buffer`` when
    it fits (same dtype and row shape, enough rows)."""
    fits = (buffer is not None and buffer.dtype == dtype and buffer.shape[1:] == tuple(shape)
            and len(buffer) >= stop - start and buffer.flags.c_contiguous)
    out = buffer[: stop - start] if fits else np.empty((stop - start, *shape), dtype)
    row_bytes = out.itemsize * int(np.prod(shape, dtype=np.int64))
    view = memoryview(out).cast("B")
    with open(path, "rb", buffering=0) as raw:
        raw.seek(offset + start * row_bytes)
        done = 0
        while done < len(view):
            n = raw.readinto(view[done:])
            if not n:
                raise ConversionError(f"{path} rows {start}-{stop - 1}: file ends inside the data; truncated?")
            done += n
    return out


def read_rows(info: FileInfo, start: int, stop: int, particle_columns: list[str],
              buffer: np.ndarray | None = None, substructure: bool = False) -> dict[str, np.ndarray]:
    """Read rows [start, stop) (one contiguous slab; h5py fancy indexing is slow) and check the jet columns
    for NaN/inf, failing with the file and row. ``constituents`` keeps the file's column order; its values
    are checked by the caller (cheaply, on the computed features, see :func:`check_finite`). ``buffer``
    may receive the constituents (plain datasets only; the result then views it). With ``substructure`` the
    result also holds the float32 columns of :data:`SUBSTRUCTURE_SOURCES` under their Parquet names (the
    file must have them: :attr:`FileInfo.missing_substructure` empty)."""
    jcol = {c: info.jet_names.index(c) for c in (hls4ml.JET_PT, hls4ml.JET_ETA, hls4ml.JET_MASS,
                                                   *hls4ml.CLASS_COLUMNS)}
    where = f"{info.path} rows {start}-{stop - 1}"
    try:
        with h5py.File(info.path, "r") as f:
            slabs = {}
            for key in (hls4ml.CONSTITUENTS, hls4ml.JETS):
                ds = f[key]
                offset = _contiguous_offset(ds)
                # Plain datasets (what h5py writes by default) are read below, outside h5py; chunked or
                # compressed ones through h5py.
                slabs[key] = (offset, ds.shape[1:], ds.dtype) if offset is not None else ds[start:stop]
    except (OSError, KeyError, ValueError) as exc:
        raise ConversionError(f"{where}: read failed ({_first_line(exc)}); truncated or corrupt?") from None
    for key, slab in slabs.items():
        if isinstance(slab, tuple):
            slabs[key] = _read_bytes(info.path, *slab, start, stop, buffer if key == hls4ml.CONSTITUENTS else None)
    cons, jets = slabs[hls4ml.CONSTITUENTS], slabs[hls4ml.JETS]
    cons = cons.astype(np.float32, copy=False)
    jet_cols = {name: jets[:, i].astype(np.float32) for name, i in jcol.items()}
    checked = dict(jet_cols)  # name in the error message -> values
    sub: dict[str, np.ndarray] = {}
    if substructure:
        for column, source in SUBSTRUCTURE_SOURCES.items():
            if source in info.jet_names:
                sub[column] = checked[source] = jets[:, info.jet_names.index(source)].astype(np.float32)
        for column, (num, den) in _RATIOS.items():
            if column not in sub:
                n, d = sub[num].astype(np.float64), sub[den].astype(np.float64)
                sub[column] = np.divide(n, d, out=np.zeros_like(n), where=d > 0).astype(np.float32)
                checked[f"{SUBSTRUCTURE_SOURCES[num]}/{SUBSTRUCTURE_SOURCES[den]}"] = sub[column]
    for name, values in checked.items():
        if not np.isfinite(values).all():
            bad = int(np.argwhere(~np.isfinite(values))[0][0]) + start
            raise ConversionError(f"{info.path}: NaN/inf in jet feature '{name}' at row {bad}")
    return {"constituents": cons, **jet_cols, **{c: sub[c] for c in SUBSTRUCTURE_SOURCES if c in sub}}


def check_finite(info: FileInfo, constituents: np.ndarray, columns: list[str], start: int) -> None:
    """Fail naming the first particle column and row holding NaN/inf (``start`` = the file row of row 0)."""
    for name in columns:
        values = constituents[:, :, info.particle_names.index(name)]
        if not np.isfinite(values).all():
            bad = int(np.argwhere(~np.isfinite(values))[0][0]) + start
            raise ConversionError(f"{info.path}: NaN/inf in '{hls4ml.CONSTITUENTS}' feature '{name}' at row {bad}")


def truth_labels(jet_cols: dict[str, np.ndarray]) -> np.ndarray:
    """Index into ``hls4ml.CLASS_NAMES`` of the one-hot truth columns; -1 where no class is set."""
    onehot = np.stack([jet_cols[c] for c in hls4ml.CLASS_COLUMNS], axis=1)
    label = np.argmax(onehot, axis=1).astype(np.int8)
    label[onehot.max(axis=1) <= 0.5] = -1
    return label

