"""hls4ml HDF5 -> partitioned Parquet, split across Spark tasks by file and row range.

Every task reads one row range of one file (bounded memory whatever the input size), computes the UCluster
inputs and writes one Parquet file per split with deterministic names, so re-running gives the same bytes.
The whole output is built in a temporary directory and renamed into place only when every task succeeded.

Row groups default to 4096 jets (about 13 MB of float32 features at P=100, F=8): big enough for efficient
column reads and compression, small enough that training shards the dataset across workers at row-group
granularity with little imbalance and that a worker's shuffle buffer spans several row groups.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from conversion.features import PID_COLUMN, compute_features, feature_plan
from conversion.hls4ml_reader import (
    ConversionError,
    FileInfo,
    check_finite,
    inspect_file,
    read_rows,
    resolve_inputs,
    truth_labels,
)
from ucluster import hls4ml
from ucluster.atomic import OutputExistsError, atomic_directory
from ucluster.data import schema as S

DEFAULT_FRACTIONS = {"train": 0.8, "test": 0.1, "val": 0.1}


@dataclass(frozen=True)
class Task:
    file_index: int
    chunk_index: int
    info: FileInfo
    start: int
    stop: int


@dataclass
class ConversionSummary:
    output: str
    files: int
    jets: int
    counts: dict = field(default_factory=dict)  # {split: {class: n}}
    seconds: float = 0.0


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash (SplitMix64 finaliser), vectorised: stable across machines and versions."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)).astype(np.uint64)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def jet_keys(source_name: str, rows: np.ndarray) -> np.ndarray:
    """Stable per-jet key from the source file's name and the row: the split depends on nothing else."""
    name_hash = np.uint64(0)
    for byte in source_name.encode():
        name_hash = _splitmix64(np.array([name_hash ^ np.uint64(byte)], dtype=np.uint64))[0]
    return _splitmix64(rows.astype(np.uint64) ^ name_hash).view(np.int64)


def assign_splits(keys: np.ndarray, fractions: dict[str, float]) -> np.ndarray:
    """Map keys to split indices (order of ``S.SPLITS``) by a uniform number derived from the key."""
    u = (keys.view(np.uint64) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    edges = np.cumsum([fractions[s] for s in S.SPLITS])
    return np.minimum(np.searchsorted(edges, u, side="right"), len(S.SPLITS) - 1)


def _check_fractions(fractions: dict[str, float]) -> dict[str, float]:
    unknown = set(fractions) - set(S.SPLITS)
    if unknown:
        raise ConversionError(f"split fractions: unknown split(s) {sorted(unknown)}; use {list(S.SPLITS)}")
    full = {s: float(fractions.get(s, 0.0)) for s in S.SPLITS}
    if any(v < 0 for v in full.values()) or abs(sum(full.values()) - 1.0) > 1e-6:
        raise ConversionError(f"split fractions must be >= 0 and sum to 1, got {full}")
    return full


def plan(infos: list[FileInfo], rows_per_task: int) -> list[Task]:
    tasks = []
    for fi, info in enumerate(infos):
        for ci, start in enumerate(range(0, info.n_jets, rows_per_task)):
            tasks.append(Task(fi, ci, info, start, min(start + rows_per_task, info.n_jets)))
    return tasks


def convert_task(task: Task, out_dir: str, meta: S.DatasetMeta, row_group_size: int, compression: str) -> dict:
    """Convert one row range; returns ``{"counts": {split: {label: n}}}`` or ``{"error": one line}``."""
    try:
        _, needed = feature_plan(list(task.info.particle_names))
        cols = read_rows(task.info, task.start, task.stop, needed)
        features, n_particles = compute_features(cols["constituents"], list(task.info.particle_names),
                                                 meta.feature_names, meta.n_particles)
        # NaN/inf in any column used propagates into the features (padded slots too: NaN * 0 is NaN), except
        # in the columns that only steer (pT decides the mask, pdgid the type): check those directly. One
        # contiguous pass; the column-by-column scan that names the culprit runs only on failure.
        steering = [c for c in ("j1_pt", PID_COLUMN) if c in task.info.particle_names]
        if not np.isfinite(features).all():
            check_finite(task.info, cols["constituents"], needed, task.start)
        check_finite(task.info, cols["constituents"], steering, task.start)
        rows = np.arange(task.start, task.stop, dtype=np.int64)
        source = os.path.basename(task.info.path)
        keys = jet_keys(source, rows)
        split_idx = assign_splits(keys, meta.split_fractions)
        labels = truth_labels(cols)
        schema = S.arrow_schema(meta)
        counts: dict[str, dict[str, int]] = {}
        for si, split in enumerate(S.SPLITS):
            sel = np.flatnonzero(split_idx == si)
            if sel.size == 0:
                continue
            table = pa.table(
                {
                    S.JET_KEY: keys[sel],
                    S.FEATURES: S.encode_features(features[sel]),
                    S.N_PARTICLES: n_particles[sel],
                    S.LABEL: labels[sel],
                    S.JET_PT: cols[hls4ml.JET_PT][sel],
                    S.JET_ETA: cols[hls4ml.JET_ETA][sel],
                    S.JET_MASS: cols[hls4ml.JET_MASS][sel],
                    S.SOURCE_FILE: pa.array([source] * sel.size, pa.string()),
                    S.SOURCE_ROW: rows[sel],
                },
                schema=schema,
            )
            part_dir = Path(out_dir) / f"split={split}"
            part_dir.mkdir(parents=True, exist_ok=True)
            name = f"part-{task.file_index:05d}-{task.chunk_index:05d}.parquet"
            # No per-file atomic write needed: the whole output directory is renamed into place at the end.
            pq.write_table(table, part_dir / name, row_group_size=row_group_size, compression=compression,
                           use_dictionary=[S.SOURCE_FILE], write_statistics=[S.JET_MASS, S.JET_PT, S.LABEL])
            names = meta.class_names
            counts[split] = {(names[k] if k >= 0 else "undefined"): int(v)
                             for k, v in sorted(Counter(labels[sel].tolist()).items())}
        return {"counts": counts}
    except ConversionError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - report any failure as one line naming the rows
        return {"error": f"{task.info.path} rows {task.start}-{task.stop - 1}: {type(exc).__name__}: {exc}"}


def convert(
    inputs: str | list[str],
    output: str | Path,
    spark=None,
    fractions: dict[str, float] | None = None,
    max_particles: int | None = None,
    rows_per_task: int = 16384,
    row_group_size: int = 4096,
    compression: str = "snappy",
    overwrite: bool = False,
    progress: bool = True,
) -> ConversionSummary:
    """Convert hls4ml HDF5 ``inputs`` into a Parquet dataset at ``output``.

    With ``spark`` the row ranges run as Spark tasks (one per range); without it they run in this process.
    Raises :class:`ConversionError` (one line) on any bad input; ``output`` is then left untouched.
    """
    import time

    t0 = time.perf_counter()
    fractions = _check_fractions(fractions or DEFAULT_FRACTIONS)
    if rows_per_task < 1 or row_group_size < 1:
        raise ConversionError("rows_per_task and row_group_size must be positive")
    output = Path(output)
    if output.exists() and not overwrite:
        raise ConversionError(f"{output}: output already exists (pass --overwrite to replace it)")
    infos = [inspect_file(p) for p in resolve_inputs(inputs)]
    infos = _check_consistent(infos, max_particles)
    feature_names, _ = feature_plan(list(infos[0].particle_names))
    n_particles = min(infos[0].n_particles, max_particles or infos[0].n_particles)
    params = {"row_group_size": row_group_size, "compression": compression, "rows_per_task": rows_per_task,
              "max_particles": n_particles, "source_format": "hls4ml", "mask": "real particles have pT > 0"}
    meta = S.DatasetMeta(feature_names=feature_names, n_particles=n_particles,
                         class_names=list(hls4ml.CLASS_NAMES), split_fractions=fractions, params=params)
    tasks = plan(infos, rows_per_task)
    try:
        with atomic_directory(output, overwrite=overwrite) as tmp:
            results = _run(tasks, str(tmp), meta, row_group_size, compression, spark, progress)
            errors = [r["error"] for r in results if "error" in r]
            if errors:
                more = f" (and {len(errors) - 1} more failing task(s))" if len(errors) > 1 else ""
                raise ConversionError(errors[0] + more)
            counts: dict[str, dict[str, int]] = {}
            for r in results:
                for split, by_class in r["counts"].items():
                    for cls, n in by_class.items():
                        counts.setdefault(split, {}).setdefault(cls, 0)
                        counts[split][cls] += n
            meta.counts = {s: dict(sorted(c.items())) for s, c in sorted(counts.items())}
            (tmp / S.META_FILE).write_text(json.dumps(json.loads(meta.to_json()), indent=2, sort_keys=True) + "\n")
    except OutputExistsError as exc:
        raise ConversionError(str(exc)) from None
    total = sum(n for c in meta.counts.values() for n in c.values())
    return ConversionSummary(str(output), len(infos), total, meta.counts, time.perf_counter() - t0)


def _check_consistent(infos: list[FileInfo], max_particles: int | None) -> list[FileInfo]:
    first = infos[0]
    plan0 = feature_plan(list(first.particle_names))[0]
    if max_particles is not None and max_particles < 1:
        raise ConversionError(f"max_particles must be positive, got {max_particles}")
    for info in infos[1:]:
        if feature_plan(list(info.particle_names))[0] != plan0:
            raise ConversionError(f"{info.path}: particle features differ from {first.path}; convert them separately")
        if info.n_particles != first.n_particles and max_particles is None:
            raise ConversionError(
                f"{info.path}: {info.n_particles} particles per jet but {first.path} has {first.n_particles}; "
                "convert separately or pass --max-particles")
    if max_particles is not None:
        short = [i for i in infos if i.n_particles < max_particles]
        if short:
            raise ConversionError(f"{short[0].path}: only {short[0].n_particles} particles per jet, "
                                  f"--max-particles asks for {max_particles}")
    return infos


def _run(tasks, out_dir, meta, row_group_size, compression, spark, progress) -> list[dict]:
    if spark is None:
        from tqdm.auto import tqdm

        return [convert_task(t, out_dir, meta, row_group_size, compression)
                for t in tqdm(tasks, desc="convert", unit="task", disable=not progress)]
    sc = spark.sparkContext
    sc.setJobDescription(f"ucluster: convert {len(tasks)} row ranges to Parquet")
    try:
        return (sc.parallelize(tasks, len(tasks))
                .map(lambda t: convert_task(t, out_dir, meta, row_group_size, compression))
                .collect())
    except Exception as exc:  # a Spark/JVM failure (lost executor, ...) rather than a bad input
        raise ConversionError(f"Spark conversion job failed: {str(exc).strip().splitlines()[0]}") from None
