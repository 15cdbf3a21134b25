"""The LHC Olympics 2020 R&D event layout, shared by the event simulator (writer) and the converter (reader).

The public R&D file (``events_anomalydetection.h5``) is a pandas DataFrame stored with ``DataFrame.to_hdf`` in
pandas' *fixed* format under the key ``df``: one row per event, 2101 float columns. Columns ``3 i``, ``3 i + 1``,
``3 i + 2`` hold pT (GeV), eta and phi of particle ``i`` (i < 700, hardest first, zero-padded), and the last
column is the truth label (1 = signal, 0 = background). On disk that is the HDF5 group ``/df`` with the
datasets ``block0_values`` (N, 2101), ``block0_items`` and ``axis0`` (the column labels), ``axis1`` (the row
index) and the attributes pandas reads back. The simulator writes exactly that (with h5py, so PyTables is not
needed; ``pandas.read_hdf`` reads the result where PyTables is installed), and the converter reads
``block0_values`` by row slabs, so the real file and simulated ones go through the same path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

KEY = "df"
VALUES = "block0_values"
MAX_PARTICLES = 700
N_COLUMNS = 3 * MAX_PARTICLES + 1  # (pT, eta, phi) x 700 + label
LABEL_COLUMN = N_COLUMNS - 1
CLASS_NAMES = ("background", "signal")  # index = the label of the file = the label stored in Parquet


def write_events(path: str | os.PathLike[str], particles: np.ndarray, labels: np.ndarray,
                 attrs: dict[str, Any] | None = None) -> Path:
    """Write events atomically (``<name>.tmp``, then rename) in the pandas fixed-frame layout of the R&D file.

    ``particles`` is (N, 700, 3) = pT, eta, phi (zero rows = padding), ``labels`` (N,) 0/1.
    """
    path = Path(path)
    n = len(particles)
    if particles.shape[1:] != (MAX_PARTICLES, 3):
        raise ValueError(f"particles have shape {particles.shape}, expected (N, {MAX_PARTICLES}, 3)")
    if labels.shape != (n,):
        raise ValueError(f"labels have shape {labels.shape}, expected ({n},)")
    values = np.concatenate([particles.reshape(n, -1).astype(np.float64), labels[:, None].astype(np.float64)],
                            axis=1)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with h5py.File(tmp, "w") as f:
            g = f.create_group(KEY)
            for key, value in {"pandas_type": "frame", "pandas_version": "0.15.2", "encoding": "UTF-8",
                               "errors": "strict", "axis0_variety": "regular", "axis1_variety": "regular",
                               "block0_items_variety": "regular"}.items():
                g.attrs[key] = np.bytes_(value)
            g.attrs["ndim"] = np.int64(2)
            g.attrs["nblocks"] = np.int64(1)
            columns = np.arange(N_COLUMNS, dtype=np.int64)
            for name, data in (("axis0", columns), ("block0_items", columns), ("axis1", np.arange(n, dtype=np.int64))):
                ds = g.create_dataset(name, data=data)
                ds.attrs["kind"] = np.bytes_("integer")
                ds.attrs["name"] = np.bytes_("N.")
            # chunked by 64 events and gzip: the zero padding of 700 slots compresses away
            g.create_dataset(VALUES, data=values, chunks=(min(64, max(n, 1)), N_COLUMNS), compression="gzip",
                             compression_opts=4, shuffle=True)
            for key, value in (attrs or {}).items():
                f.attrs[key] = value
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
