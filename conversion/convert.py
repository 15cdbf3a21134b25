"""hls4ml HDF5 -> partitioned Parquet, split across Spark tasks by file and row range.

Every task reads one row range of one file, computes the UCluster inputs and writes one Parquet file per split
with deterministic names, so re-running gives the same bytes. A task streams its range in chunks of
``CHUNK_ROWS`` jets, so its memory is bounded by the chunk and row-group sizes, not by the range: the range
(``rows_per_task``, default 65536) is only the unit of parallelism, and it is large because a Spark task has a
fixed cost (about 35 ms measured on local[2]; 7 tasks of 14k jets took 0.74 s where 2 of 50k took 0.40 s).
The whole output is built in a temporary directory and renamed into place only when every task succeeded.

The substructure jet columns (``schema.SUBSTRUCTURE_COLUMNS``: soft-drop mass, N-subjettiness) are kept when
the input files carry them (see :func:`substructure_wanted`). They are all or nothing, for every file of a
conversion: a dataset whose columns hold for only some of its jets would bias any study that uses them.

Row groups default to 4096 jets (about 13 MB of float32 features at P=100, F=8): big enough for efficient
column reads and compression, small enough that training shards the dataset across workers at row-group
granularity with little imbalance and that a worker's shuffle buffer spans several row groups.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from conversion.features import NonFiniteSteering, compute_features, feature_plan
from conversion.hls4ml_reader import (
    REQUIRED_SUBSTRUCTURE,
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
    """Split every file into near-equal row ranges of at most ``rows_per_task`` rows (equal sizes keep the
    Spark tasks balanced: 24k rows become 2 x 12k, not 16k + 8k)."""
    tasks = []
    for fi, info in enumerate(infos):
        n_tasks = max(1, -(-info.n_jets // rows_per_task))
        edges = [info.n_jets * i // n_tasks for i in range(n_tasks + 1)]
        tasks += [Task(fi, ci, info, a, b) for ci, (a, b) in enumerate(pairwise(edges)) if b > a]
    return tasks


# Rows read, computed and handed to the writers at a time: small enough that a chunk's arrays stay in cache,
# big enough that the per-chunk overhead (an HDF5 hyperslab read, a few numpy calls) stays negligible.
CHUNK_ROWS = 2048


class _SplitWriters:
    """One Parquet file per split, written by a background thread in row groups of exactly ``row_group_size``
    rows (the last one shorter), so the layout does not depend on the chunking and the bytes are reproducible."""

    def __init__(self, task: Task, out_dir: str, schema: pa.Schema, row_group_size: int, compression: str):
        self.task, self.out_dir, self.schema = task, Path(out_dir), schema
        self.row_group_size, self.compression = row_group_size, compression
        self.pending: dict[str, list[pa.Table]] = {}
        self.rows: dict[str, int] = {}
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="parquet-writer")
        self.futures: list[Future] = []

    def add(self, split: str, table: pa.Table) -> None:
        self.pending.setdefault(split, []).append(table)
        self.rows[split] = self.rows.get(split, 0) + table.num_rows
        while self.rows[split] >= self.row_group_size:
            self._flush(split, self.row_group_size)

    def _flush(self, split: str, n: int) -> None:
        whole = pa.concat_tables(self.pending[split])
        head, rest = whole.slice(0, n), whole.slice(n)
        self.pending[split], self.rows[split] = ([rest] if rest.num_rows else []), rest.num_rows
        self.futures.append(self.pool.submit(self._write, split, head))

    def _write(self, split: str, table: pa.Table) -> None:
        if split not in self.writers:
            part_dir = self.out_dir / f"split={split}"
            part_dir.mkdir(parents=True, exist_ok=True)
            name = f"part-{self.task.file_index:05d}-{self.task.chunk_index:05d}.parquet"
            # No per-file atomic write needed: the whole output directory is renamed into place at the end.
            self.writers[split] = pq.ParquetWriter(
                part_dir / name, self.schema, compression=self.compression, use_dictionary=[S.SOURCE_FILE],
                write_statistics=[S.JET_MASS, S.JET_PT, S.LABEL])
        self.writers[split].write_table(table, row_group_size=self.row_group_size)

    def close(self) -> None:
        """Write what is left and close every file; re-raises a writer thread's error."""
        try:
            for split in list(self.pending):
                if self.rows[split]:
                    self._flush(split, self.rows[split])
            for fut in self.futures:
                fut.result()
        finally:
            self.abort()

    def abort(self) -> None:
        """Stop the writer thread (dropping writes not yet started) and close the open files; safe to repeat.
        After a failure the half-written files go with the temporary output directory."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


def _convert_chunk(task: Task, cols: dict, start: int, stop: int, meta: S.DatasetMeta, needed: list[str],
                   feature_buffer: np.ndarray):
    """Features (in ``feature_buffer``), keys, split indices and labels of rows [start, stop) of the file."""
    try:
        features, n_particles = compute_features(cols["constituents"], list(task.info.particle_names),
                                                 meta.feature_names, meta.n_particles, out=feature_buffer)
    except NonFiniteSteering as exc:  # name the row
        check_finite(task.info, cols["constituents"], [exc.column], start)
        raise
    # NaN/inf in any other column used propagates into the features (padded slots too: NaN * 0 is NaN). One
    # contiguous pass; the column-by-column scan that names the culprit runs only on failure.
    if not np.isfinite(features).all():
        check_finite(task.info, cols["constituents"], needed, start)
    rows = np.arange(start, stop, dtype=np.int64)
    keys = jet_keys(os.path.basename(task.info.path), rows)
    return features, n_particles, rows, keys, assign_splits(keys, meta.split_fractions), truth_labels(cols)


def convert_task(task: Task, out_dir: str, meta: S.DatasetMeta, row_group_size: int, compression: str) -> dict:
    """Convert one row range; returns ``{"counts": {split: {label: n}}}`` or ``{"error": one line}``.

    Streams the range in chunks through three overlapping stages: a reader thread fetches the next HDF5
    slab while this thread computes the features of the current one and a writer thread encodes and
    writes full row groups (h5py, numpy and Parquet each release the GIL for their heavy part).
    """
    writers = None
    try:
        _, needed = feature_plan(list(task.info.particle_names))
        source = os.path.basename(task.info.path)
        schema = S.arrow_schema(meta, optional=True)
        substructure = bool(meta.substructure_columns)
        writers = _SplitWriters(task, out_dir, schema, row_group_size, compression)
        n_labels = len(meta.class_names) + 1  # label -1 (undefined) is counted in the last slot
        counts = {split: np.zeros(n_labels, np.int64) for split in S.SPLITS}
        source_column = pa.array([source] * min(CHUNK_ROWS, task.stop - task.start), pa.string())  # sliced below
        starts = list(range(task.start, task.stop, CHUNK_ROWS))
        rows_max = min(CHUNK_ROWS, task.stop - task.start)
        # Two constituent buffers (the reader fills one while this thread reads the other) and one feature
        # buffer, reused for every chunk: fresh allocations would cost page faults and zeroing each time.
        slab = (rows_max, task.info.n_particles, len(task.info.particle_names))
        buffers = [np.empty(slab, np.float32), np.empty(slab, np.float32)]
        feature_buffer = np.empty((rows_max, meta.n_particles, meta.n_features), np.float32)

        def read(i: int) -> dict:
            a = starts[i]
            return read_rows(task.info, a, min(a + CHUNK_ROWS, task.stop), needed, buffers[i % 2], substructure)

        with ThreadPoolExecutor(1, thread_name_prefix="hdf5-reader") as reader:
            ahead = reader.submit(read, 0)
            for i, start in enumerate(starts):
                stop = min(start + CHUNK_ROWS, task.stop)
                cols = ahead.result()
                if i + 1 < len(starts):
                    ahead = reader.submit(read, i + 1)  # into the other buffer: chunk i - 1 is done with it
                features, n_particles, rows, keys, split_idx, labels = _convert_chunk(
                    task, cols, start, stop, meta, needed, feature_buffer)
                for si, split in enumerate(S.SPLITS):
                    sel = np.flatnonzero(split_idx == si)
                    if sel.size == 0:
                        continue
                    writers.add(split, pa.table(
                        {
                            S.JET_KEY: keys[sel],
                            S.FEATURES: S.encode_features(features[sel]),
                            S.N_PARTICLES: n_particles[sel],
                            S.LABEL: labels[sel],
                            S.JET_PT: cols[hls4ml.JET_PT][sel],
                            S.JET_ETA: cols[hls4ml.JET_ETA][sel],
                            S.JET_MASS: cols[hls4ml.JET_MASS][sel],
                            **{c: cols[c][sel] for c in meta.substructure_columns},
                            S.SOURCE_FILE: source_column.slice(0, sel.size),
                            S.SOURCE_ROW: rows[sel],
                        },
                        schema=schema,
                    ))
                    counts[split] += np.bincount(labels[sel].astype(np.int64) % n_labels, minlength=n_labels)
        writers.close()
        names = [*meta.class_names, "undefined"]
        return {"counts": {split: {names[k]: int(v) for k, v in enumerate(c) if v}
                           for split, c in counts.items() if c.any()}}
    except ConversionError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - report any failure as one line naming the rows
        return {"error": f"{task.info.path} rows {task.start}-{task.stop - 1}: {type(exc).__name__}: {exc}"}
    finally:
        if writers is not None:
            writers.abort()


def convert(
    inputs: str | list[str],
    output: str | Path,
    spark=None,
    fractions: dict[str, float] | None = None,
    max_particles: int | None = None,
    rows_per_task: int = 65536,
    row_group_size: int = 4096,
    compression: str = "snappy",
    overwrite: bool = False,
    progress: bool = True,
    processes: int = 1,
) -> ConversionSummary:
    """Convert hls4ml HDF5 ``inputs`` into a Parquet dataset at ``output``.

    With ``spark`` the row ranges run as Spark tasks (one per range); without it they run in this process, or
    in ``processes`` local processes.
    The substructure columns are written when every input file has them (:func:`substructure_wanted`).
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
    substructure = list(S.SUBSTRUCTURE_COLUMNS) if substructure_wanted(infos) else []
    meta = S.DatasetMeta(feature_names=feature_names, n_particles=n_particles,
                         class_names=list(hls4ml.CLASS_NAMES), split_fractions=fractions, params=params,
                         substructure_columns=substructure)
    tasks = plan(infos, rows_per_task)
    try:
        with atomic_directory(output, overwrite=overwrite) as tmp:
            results = _run(tasks, str(tmp), meta, row_group_size, compression, spark, progress, processes)
            meta.counts = merge_task_counts(results)
            (tmp / S.META_FILE).write_text(json.dumps(json.loads(meta.to_json()), indent=2, sort_keys=True) + "\n")
    except OutputExistsError as exc:
        raise ConversionError(str(exc)) from None
    total = sum(n for c in meta.counts.values() for n in c.values())
    return ConversionSummary(str(output), len(infos), total, meta.counts, time.perf_counter() - t0)


def merge_task_counts(results: list[dict]) -> dict[str, dict[str, int]]:
    """Jets per split and class over every task's result (sorted); the first task error, if any, as one line."""
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
    return {s: dict(sorted(c.items())) for s, c in sorted(counts.items())}


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


def substructure_wanted(infos: list[FileInfo]) -> bool:
    """Whether the dataset gets the substructure columns: yes when the files carry them (``j_mass_mmdt`` and
    ``j_tau{1,2,3}_b1``; the ratios are read or computed). When only some files do, the conversion is refused
    with the first file lacking them and the column it lacks, rather than silently dropping the columns the
    other files have: convert them separately, as for files with different particle features."""
    having = [info for info in infos if not info.missing_substructure]
    if not having:
        return False
    for info in infos:
        if info.missing_substructure:
            raise ConversionError(
                f"{info.path}: jet feature '{info.missing_substructure[0]}' missing from '{hls4ml.JET_NAMES}' "
                f"while {having[0].path} has the substructure columns ({', '.join(REQUIRED_SUBSTRUCTURE)}"
                "); convert them separately")
    return True


def run_local(job, tasks: list, processes: int = 1, desc: str = "convert", progress: bool = True) -> list[dict]:
    """Run the conversion ``job`` (picklable: a module-level function or a partial of one) over ``tasks``
    without Spark: in this process, or in a pool of ``processes`` (a many-core machine without a JVM); results
    in task order either way, as Spark's collect gives them."""
    from tqdm.auto import tqdm

    if processes <= 1:
        return [job(t) for t in tqdm(tasks, desc=desc, unit="task", disable=not progress)]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(processes) as pool:
        return list(tqdm(pool.map(job, tasks), total=len(tasks), desc=desc, unit="task", disable=not progress))


def _run(tasks, out_dir, meta, row_group_size, compression, spark, progress, processes: int = 1) -> list[dict]:
    if spark is None:
        from functools import partial

        job = partial(convert_task, out_dir=out_dir, meta=meta, row_group_size=row_group_size,
                      compression=compression)
        return run_local(job, tasks, processes, "convert", progress)
    sc = spark.sparkContext
    sc.setJobDescription(f"ucluster: convert {len(tasks)} row ranges to Parquet")
    try:
        return (sc.parallelize(tasks, len(tasks))
                .map(lambda t: convert_task(t, out_dir, meta, row_group_size, compression))
                .collect())
    except Exception as exc:  # a Spark/JVM failure (lost executor, ...) rather than a bad input
        raise ConversionError(f"Spark conversion job failed: {str(exc).strip().splitlines()[0]}") from None
