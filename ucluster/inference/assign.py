"""Label every jet of a Parquet dataset with a trained model, in parallel on Spark.

Spark reads the dataset (its ``split=`` partitions included) and hands each task Arrow batches of at most
``batch_size`` jets of the two model inputs (a scalar-iterator Arrow UDF): memory per task is bounded whatever the
dataset size. The model file is shipped to the executors with ``SparkContext.addFile`` and loaded once per Python
worker. The output keeps the input's ``split=`` partitioning and is written into a temporary directory beside
``out`` that is renamed into place only when every task succeeded; ``_ucluster_assign.json`` beside the data records
the model, α and counts.

Every jet is assigned: no class or mass selection happens here (evaluation applies one later).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ucluster.atomic import OutputExistsError, atomic_directory
from ucluster.data import schema as S
from ucluster.inference import InferenceError
from ucluster.inference import predict as P
from ucluster.inference.model_source import (
    ModelSource,
    check_compatible,
    keras_centroids,
    keras_info,
    resolve_model,
    scratch_dir,
)

ASSIGN_META = "_ucluster_assign.json"
REQUIRED = (S.FEATURES, S.N_PARTICLES, S.JET_KEY)

_STAGED: dict[str, str] = {}  # content hash -> staged copy of a model file (one per driver process)


@dataclass
class AssignSummary:
    output: str
    jets: int
    seconds: float
    alpha: float
    model: str
    counts: dict = field(default_factory=dict)  # {split (or "all"): {cluster: jets}}

    @property
    def jets_per_s(self) -> float:
        return self.jets / max(self.seconds, 1e-9)


@dataclass
class DatasetInfo:
    meta: S.DatasetMeta
    files: list[Path]
    splits: list[str]  # split= partitions present (empty: an unpartitioned file or directory)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def inspect_dataset(data: str | Path) -> DatasetInfo:
    """Metadata and files of a dataset root, a ``split=`` directory or one Parquet file; every footer is read,
    so a corrupt file is reported (one line, naming it) before any task starts."""
    root = Path(data)
    if not root.exists():
        raise S.DatasetError(f"{root}: dataset not found")
    if root.is_file():
        files = [root]
    else:
        files = sorted(f for f in root.rglob("*.parquet")
                       if not any(part.startswith(("_", ".")) for part in f.relative_to(root).parts))
    if not files:
        raise S.DatasetError(f"{root}: no Parquet files")
    meta = S.read_meta(root) if root.is_dir() and (root / S.META_FILE).is_file() else None
    for f in files:
        try:
            schema = pq.read_schema(f)
        except Exception as exc:  # noqa: BLE001 - any footer failure means a corrupt file
            raise S.DatasetError(f"{f}: corrupt Parquet file ({_first_line(exc)})") from None
        missing = [c for c in REQUIRED if c not in schema.names]
        if missing:
            raise S.DatasetError(f"{f}: lacks column(s) {missing} needed for cluster assignment")
        embedded = (schema.metadata or {}).get(S.META_KEY)
        if embedded is None:
            if meta is None:
                raise S.DatasetError(f"{f}: not a ucluster dataset file (no '{S.META_KEY.decode()}' metadata)")
            continue
        try:
            file_meta = S.DatasetMeta.from_json(embedded.decode())
        except (ValueError, TypeError) as exc:
            raise S.DatasetError(f"{f}: unreadable dataset metadata ({_first_line(exc)})") from None
        if meta is None:
            meta = file_meta
        elif (file_meta.feature_names, file_meta.n_particles) != (meta.feature_names, meta.n_particles):
            raise S.DatasetError(f"{f}: features {file_meta.feature_names} x {file_meta.n_particles} particles differ "
                                 f"from the dataset's {meta.feature_names} x {meta.n_particles}")
    splits = sorted({p.split("=", 1)[1] for f in files for p in f.relative_to(root).parts[:-1]
                     if p.startswith("split=")}) if root.is_dir() else []
    return DatasetInfo(meta, files, splits)


def _check_paths(data: Path, out: Path) -> None:
    data, out = data.absolute(), out.absolute()
    if out == data or data in out.parents or out in data.parents:
        raise InferenceError(f"{out}: the output must be outside the input dataset {data} (and not contain it)")


def stage_model_file(sc, path: str) -> str:
    """Ship the model file to every executor; returns the name to pass to ``SparkFiles.get``.

    The name carries a hash of the content: ``addFile`` refuses a second, different file of the same name.
    """
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    if digest not in _STAGED:
        staged = scratch_dir("ucluster-ship-") / f"ucluster-model-{digest}.keras"  # served while we run
        shutil.copyfile(path, staged)
        _STAGED[digest] = str(staged)
        sc.addFile(str(staged))
    return Path(_STAGED[digest]).name


@contextlib.contextmanager
def _spark_conf(spark, key: str, value: str | None) -> Iterator[None]:
    """``key`` set to ``value`` inside the block, restored after it; ``None`` leaves the conf as it is."""
    if value is None:
        yield
        return
    old = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if old is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, old)


_JVM_ERROR = re.compile(r"(?:\w+\.)*\w+(?:Exception|Error): (\[[A-Z_.]+\].*)")
_PY_ERROR = re.compile(r"^(?:\w+\.)*\w*(?:Error|Exception): .+")


def spark_error(exc: BaseException) -> str:
    """One line out of a Spark failure: our own error if a task raised one, else Spark's error class and message
    with its first cause, else the last exception line of a Python traceback."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for marker in ("DatasetError: ", "InferenceError: "):
        for line in lines:
            if marker in line:
                return line.split(marker, 1)[1].strip()
    for line in lines:
        m = _JVM_ERROR.search(line)
        if m:
            head = re.sub(r"\s*SQLSTATE: \w+\.?\s*$", "", m.group(1)).strip()
            cause = next((c.removeprefix("Caused by: ") for c in lines if c.startswith("Caused by: ")), "")
            cause = cause.rsplit("Exception: ", 1)[-1].strip()
            return (f"{head} ({cause})" if cause else head)[:500]
    python = [line for line in lines if _PY_ERROR.match(line) and not line.startswith(("org.", "java.", "py4j"))]
    return (python[-1] if python else lines[0] if lines else type(exc).__name__)[:500]


def balanced_min_partitions(spark, df, slots: int) -> int | None:
    """A ``spark.sql.files.minPartitionNum`` that makes the read tasks of ``df`` (a file scan) a whole number of
    waves over ``slots``, or None to keep Spark's own split.

    Only a small dataset (fewer than 4 waves) is re-planned: there the last wave's idle slots cost most (3 tasks of
    48 k jets on 2 slots took 6.6 s, 4 tasks 5.8 s; ``docs/benchmarks.md``). Planning lists files only (~0.1 s).
    """
    key = "spark.sql.files.minPartitionNum"

    def planned(value: int | None) -> int:  # a new DataFrame each time: a DataFrame keeps its first physical plan
        with _spark_conf(spark, key, None if value is None else str(value)):
            return df.select("*").rdd.getNumPartitions()

    if slots < 2 or spark.conf.get(key, None) is not None:  # one slot, or the user chose
        return None
    tasks = planned(None)
    if tasks % slots == 0 or tasks >= 4 * slots:
        return None
    for value in range(slots * (tasks // slots + 1), 4 * slots + 1, slots):
        if planned(value) % slots == 0:
            return value
    return None


def model_struct_type(with_latent: bool):
    """The Spark type of the model's columns (the UDF's struct result)."""
    from pyspark.sql import types as T

    floats = T.ArrayType(T.FloatType(), containsNull=False)
    return T.StructType([T.StructField(n, T.IntegerType() if n == P.CLUSTER else floats, True)
                         for n in P.new_columns(with_latent)])


def assigned_frame(df, spec: P.AssignSpec):
    """``df`` with the model's columns in place of features/n_particles, in :func:`predict.output_columns` order.

    A scalar-iterator Arrow UDF over the two input columns (median 8.0 s against 8.8 s for ``mapInArrow`` over whole
    rows, which sent the carried columns through Python and back; ``docs/benchmarks.md``)."""
    from pyspark.sql import functions as F
    from pyspark.sql.functions import arrow_udf

    def assign_batches(batches: Iterator[tuple[pa.Array, pa.Array]]) -> Iterator[pa.Array]:
        return P.assign_stream(batches, spec)

    udf = arrow_udf(assign_batches, model_struct_type(spec.with_latent))  # the hints make it a scalar iterator
    new = set(P.new_columns(spec.with_latent))
    out = df.withColumn("_ucluster_model", udf(F.col(S.FEATURES), F.col(S.N_PARTICLES)))
    return out.select(*[F.col(f"_ucluster_model.{c}").alias(c) if c in new else F.col(c)
                        for c in P.output_columns(df.columns, spec.with_latent)])


def assign(spark, model: ModelSource | str, data: str | Path, out: str | Path, *, overwrite: bool = False,
           with_latent: bool = False, alpha: float | None = None, batch_size: int = 1024,
           splits: list[str] | None = None, tracking: str = "") -> AssignSummary:
    """Assign every jet of ``data`` (optionally only ``splits``) to a cluster; write the result to ``out``.

    Raises :class:`InferenceError` or :class:`ucluster.data.schema.DatasetError` (one line) for bad inputs;
    ``out`` is then left as it was.
    """
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    if isinstance(model, str):
        model = resolve_model(model, tracking)
    data, out = Path(data), Path(out)
    info = inspect_dataset(data)
    check_compatible(model, info.meta, data)
    alpha = model.alpha if alpha is None else float(alpha)
    if alpha is None:
        raise InferenceError(f"{model.description}: no training config says which α the soft assignment uses; "
                             "pass --alpha")
    if alpha < 0:
        raise InferenceError(f"--alpha must be >= 0, got {alpha}")
    if batch_size < 1:
        raise InferenceError(f"--batch-size must be positive, got {batch_size}")
    _check_paths(data, out)
    if out.exists() and not overwrite:
        raise InferenceError(f"{out.absolute()}: output already exists (pass --overwrite to replace it)")
    if splits:
        unknown = sorted(set(splits) - set(info.splits))
        if unknown:
            raise InferenceError(f"{data}: no split(s) {unknown} here (splits present: {info.splits or 'none'})")

    sc = spark.sparkContext
    spec = P.AssignSpec(model_file=stage_model_file(sc, model.model_path), feature_names=tuple(info.meta.feature_names),
                        n_particles=info.meta.n_particles, max_particles=model.max_particles, alpha=alpha,
                        batch_size=batch_size, with_latent=with_latent)
    df = spark.read.parquet(str(data))
    if splits:
        df = df.where(F.col("split").isin(list(splits)))
    df = df.select(*[c for c in dict.fromkeys([*REQUIRED, *P.CARRIED, "split"]) if c in df.columns])
    result = assigned_frame(df, spec)
    partitioned = "split" in df.columns
    t0 = time.perf_counter()
    try:
        with atomic_directory(out, overwrite=overwrite) as tmp:
            # Bounded Arrow batches (memory). The partitioning is Spark's own (at least one split per task slot),
            # made a whole number of waves for small data: forcing 4 splits per slot cost 11 % in
            # studies/benchmark_assign (a fixed cost per task), batch size none.
            balance = balanced_min_partitions(spark, df, sc.defaultParallelism)
            with (_spark_conf(spark, "spark.sql.execution.arrow.maxRecordsPerBatch", str(batch_size)),
                  _spark_conf(spark, "spark.sql.files.minPartitionNum", None if balance is None else str(balance))):
                sc.setJobDescription(f"ucluster: assign clusters ({model.description}) to {data}")
                writer = result.write.mode("overwrite")
                if partitioned:
                    writer = writer.partitionBy("split")
                writer.parquet(str(tmp))
            seconds = time.perf_counter() - t0
            counts = _counts(spark, tmp, partitioned)
            jets = sum(n for c in counts.values() for n in c.values())
            centroids = keras_centroids(model.model_path, keras_info(model.model_path))
            record = {
                "format_version": 1, "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "model_spec": model.source or model.model_path,
                "model": model.card(), "alpha": alpha, "data": str(data.absolute()), "splits": splits or info.splits,
                "dataset": {"feature_names": info.meta.feature_names, "n_particles": info.meta.n_particles,
                            "class_names": info.meta.class_names},
                "with_latent": with_latent, "batch_size": batch_size, "jets": jets, "seconds": seconds,
                "counts": counts, "centroids": None if centroids is None else centroids.tolist(),
            }
            (tmp / ASSIGN_META).write_text(json.dumps(record, indent=2) + "\n")
    except OutputExistsError as exc:
        raise InferenceError(str(exc)) from None
    except (PySparkException, Py4JJavaError) as exc:
        raise InferenceError(f"assignment job failed: {spark_error(exc)}") from None
    finally:
        sc.setJobDescription(None)
    return AssignSummary(str(out), jets, seconds, alpha, model.description, counts)


def _counts(spark, path: Path, partitioned: bool) -> dict[str, dict[str, int]]:
    """Jets per split and cluster, read back from the written output (two small columns)."""
    keys = (["split"] if partitioned else []) + [P.CLUSTER]
    files = sorted(str(f) for f in path.rglob("*.parquet") if not f.name.startswith((".", "_")))
    if not files:
        return {}
    # The files, not the (hidden) temporary directory itself, which Spark would warn about.
    rows = spark.read.option("basePath", str(path)).parquet(*files).groupBy(*keys).count().collect()
    counts: dict[str, dict[str, int]] = {}
    for row in sorted(rows, key=lambda r: tuple(r[k] for k in keys)):
        split = row["split"] if partitioned else "all"
        counts.setdefault(split, {})[str(row[P.CLUSTER])] = int(row["count"])
    return counts


def read_assign_meta(path: str | Path) -> dict:
    """The record written beside an assignment output; fails with one line if ``path`` is not one."""
    path = Path(path)
    if not path.exists():
        raise InferenceError(f"{path}: assignment output not found")
    meta = path / ASSIGN_META
    if not meta.is_file():
        raise InferenceError(f"{path}: not a cluster-assignment output (no {ASSIGN_META}; write one with "
                             "jobs/assign.py)")
    try:
        return json.loads(meta.read_text())
    except ValueError as exc:
        raise InferenceError(f"{meta}: unreadable ({_first_line(exc)})") from None
