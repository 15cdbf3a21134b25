"""The Parquet jet dataset contract between the converter (writer) and training/assignment (readers).

Layout: ``<root>/split=<train|test|val>/part-<file>-<chunk>.parquet`` plus ``<root>/_ucluster.json``.
Each row is one jet; ``features`` holds the jet's (P, F) float32 matrix, particle-major, real particles first,
padded ones zero, as one fixed-size binary value of P*F*4 little-endian bytes (decode it with
:func:`decode_features`, or ``np.frombuffer(value, "<f4").reshape(P, F)``); ``n_particles`` counts the real
ones (mask = slot index < n_particles). A binary column rather than a list of floats because Parquet stores
a list with a repetition level per element: measured here, writing and reading were 8-10x slower that way.
Optional float32 jet columns (:data:`SUBSTRUCTURE_COLUMNS`: soft-drop mass, N-subjettiness) follow
``jet_mass`` when the source files carry them; the metadata's ``substructure_columns`` lists them (empty for
datasets without them, also those converted before they existed).
The same metadata JSON is stored in every file's schema under the key ``ucluster``, so a file is
self-describing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

META_KEY = b"ucluster"
META_FILE = "_ucluster.json"
SPLITS = ("train", "test", "val")
FORMAT_VERSION = 1

# Columns every reader may rely on.
FEATURES, N_PARTICLES, LABEL, JET_KEY = "features", "n_particles", "label", "jet_key"
JET_PT, JET_ETA, JET_MASS = "jet_pt", "jet_eta", "jet_mass"
SOURCE_FILE, SOURCE_ROW = "source_file", "source_row"

# Optional jet columns: the hls4ml substructure variables (soft drop beta = 0, z_cut = 0.1; N-subjettiness with
# beta = 1). A dataset has all of them or none (see conversion/convert.py).
JET_MASS_SD = "jet_mass_sd"
JET_TAU1, JET_TAU2, JET_TAU3 = "jet_tau1", "jet_tau2", "jet_tau3"
JET_TAU21, JET_TAU32 = "jet_tau21", "jet_tau32"
SUBSTRUCTURE_COLUMNS: tuple[str, ...] = (JET_MASS_SD, JET_TAU1, JET_TAU2, JET_TAU3, JET_TAU21, JET_TAU32)

# Event-level datasets (``level = "event"``, conversion/lhco_events.py): one row per event, the point cloud of the
# constituents of its two leading jets; jet_pt / jet_eta are the leading jet's and jet_mass holds the dijet
# mass m_jj, so the data window (data.mass_min/max) is the m_jj window. These float32 columns follow.
MJJ, M_J1, M_J2, TAU21_J1, TAU21_J2 = "mjj", "m_j1", "m_j2", "tau21_j1", "tau21_j2"
EVENT_COLUMNS: tuple[str, ...] = (MJJ, M_J1, M_J2, TAU21_J1, TAU21_J2)
LEVELS = ("jet", "event")


@dataclass
class DatasetMeta:
    feature_names: list[str]
    n_particles: int
    class_names: list[str]
    split_fractions: dict[str, float]
    params: dict = field(default_factory=dict)  # conversion parameters (row group size, compression, ...)
    counts: dict = field(default_factory=dict)  # {split: {class: jets}}; filled in the dataset-level file
    format_version: int = FORMAT_VERSION
    # Optional jet columns present: SUBSTRUCTURE_COLUMNS or none. Defaulted, so the metadata of datasets written
    # before the field existed still reads (same format version: columns were only added).
    substructure_columns: list[str] = field(default_factory=list)
    level: str = "jet"  # "event": one row per event (EVENT_COLUMNS present); defaulted for older datasets
    event_columns: list[str] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def to_json(self, with_counts: bool = True) -> str:
        d = asdict(self)
        if not with_counts:
            d.pop("counts")
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DatasetMeta:
        return cls(**json.loads(text))


def arrow_schema(meta: DatasetMeta, optional: bool = False) -> pa.Schema:
    """The Parquet schema, with ``meta`` embedded. ``optional=True`` adds the optional jet columns that ``meta``
    lists (after ``jet_mass``), which is what the converter writes; without it only the columns every dataset
    has, for callers that append the optional ones themselves (studies/quality_gpu.py's unpack)."""
    size = meta.n_particles * meta.n_features
    extra = ([pa.field(name, pa.float32()) for name in [*meta.substructure_columns, *meta.event_columns]]
             if optional else [])
    return pa.schema(
        [
            pa.field(JET_KEY, pa.int64()),
            pa.field(FEATURES, pa.binary(size * 4)),
            pa.field(N_PARTICLES, pa.int16()),
            pa.field(LABEL, pa.int8()),
            pa.field(JET_PT, pa.float32()),
            pa.field(JET_ETA, pa.float32()),
            pa.field(JET_MASS, pa.float32()),
            *extra,
            pa.field(SOURCE_FILE, pa.string()),
            pa.field(SOURCE_ROW, pa.int64()),
        ],
        metadata={META_KEY: meta.to_json(with_counts=False).encode()},
    )


def encode_features(features: np.ndarray) -> pa.FixedSizeBinaryArray:
    """(N, P, F) float32 -> one fixed-size binary value per jet, without copying when already contiguous."""
    flat = np.ascontiguousarray(features, dtype="<f4").reshape(len(features), -1)
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(flat.shape[1] * 4), len(flat),
                                                [None, pa.py_buffer(flat)])


def decode_features(column: pa.Array | pa.ChunkedArray, n_particles: int, n_features: int) -> np.ndarray:
    """Inverse of :func:`encode_features` for fixed-size or plain binary arrays (Spark hands the latter)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    n, width = len(column), n_particles * n_features * 4
    if pa.types.is_fixed_size_binary(column.type):
        if column.type.byte_width != width:
            raise DatasetError(f"features of {column.type.byte_width} bytes per jet, expected {width} "
                               f"({n_particles} particles x {n_features} features)")
        data = np.frombuffer(column.buffers()[1], np.uint8)[column.offset * width:(column.offset + n) * width]
    elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        offsets = np.frombuffer(column.buffers()[1], np.int64 if pa.types.is_large_binary(column.type)
                                else np.int32)[column.offset:column.offset + n + 1]
        if n and not np.all(np.diff(offsets) == width):
            raise DatasetError(f"features values are not all {width} bytes ({n_particles} x {n_features} float32)")
        data = np.frombuffer(column.buffers()[2], np.uint8)[offsets[0]:offsets[-1]] if n else np.zeros(0, np.uint8)
    else:
        raise DatasetError(f"features column has type {column.type}, expected fixed-size binary")
    return data.view("<f4").reshape(n, n_particles, n_features)


class DatasetError(ValueError):
    """A dataset that cannot be used, reported as one line naming the path and the problem."""


def read_meta(root: str | Path) -> DatasetMeta:
    """Read the dataset-level metadata, failing with one line if ``root`` is not a converted dataset."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: dataset not found")
    path = root / META_FILE
    if not path.is_file():
        raise DatasetError(f"{root}: not a ucluster Parquet dataset (no {META_FILE}; convert it with conversion/)")
    try:
        meta = DatasetMeta.from_json(path.read_text())
    except (ValueError, TypeError) as exc:
        raise DatasetError(f"{path}: unreadable dataset metadata ({exc})") from None
    if meta.format_version != FORMAT_VERSION:
        raise DatasetError(f"{path}: dataset format {meta.format_version}, this ucluster reads {FORMAT_VERSION}")
    sub = meta.substructure_columns
    if not isinstance(sub, list) or any(c not in SUBSTRUCTURE_COLUMNS for c in sub):
        raise DatasetError(f"{path}: substructure_columns {meta.substructure_columns!r} are not among "
                           f"{list(SUBSTRUCTURE_COLUMNS)}")
    if meta.level not in LEVELS or any(c not in EVENT_COLUMNS for c in meta.event_columns):
        raise DatasetError(f"{path}: level {meta.level!r} / event_columns {meta.event_columns!r} are not "
                           f"among {list(LEVELS)} / {list(EVENT_COLUMNS)}")
    return meta


def split_files(root: str | Path, split: str) -> list[Path]:
    return sorted((Path(root) / f"split={split}").glob("*.parquet"))
