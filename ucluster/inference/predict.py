"""Run a saved UCluster model on Arrow batches: what every Spark task (and the driver, for samples) executes.

Loading TensorFlow and a model takes seconds, so each Python process keeps its models in a module-level cache
keyed by path: Spark reuses its Python workers across tasks, so an executor loads the model once and not once
per partition. Inputs are prepared by :func:`ucluster.data.loader.model_inputs`, the function training uses.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ucluster.data import schema as S
from ucluster.data.loader import model_inputs

# Columns copied from the dataset to the assignment output, so that it can be evaluated on its own.
CARRIED = [S.JET_KEY, S.LABEL, S.JET_MASS, S.JET_PT, S.JET_ETA, S.SOURCE_FILE, S.SOURCE_ROW]
CLUSTER, DISTANCES, SOFT, SCORES, LATENT = "cluster", "distances", "soft_assignment", "scores", "latent"

_MODELS: dict[str, Predictor] = {}


def _set_threads() -> None:
    """One Spark task = ``spark.task.cpus`` TensorFlow threads, so parallel tasks do not oversubscribe cores.

    Only effective before TensorFlow's runtime starts, i.e. on the first model load of a process.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    threads = int(os.environ.get("UCLUSTER_TF_THREADS", "0"))
    if not threads:
        try:
            from pyspark import TaskContext

            ctx = TaskContext.get()
            threads = ctx.cpus() if ctx is not None else 0
        except Exception:  # noqa: BLE001 - no Spark here: let TensorFlow decide
            threads = 0
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
        except RuntimeError:
            pass  # TensorFlow already initialised in this process


class Predictor:
    """A loaded model with one compiled forward pass over (B, P, F) features and (B, P) masks.

    On TensorFlow (assignment, serving) the pass is one ``tf.function`` with a fixed signature, traced once; on
    another Keras backend (a JAX training logging its model) Keras' own compiled predict step is used.
    """

    def __init__(self, model: Any):
        import keras

        self.model = model
        spec = model.input["features"] if isinstance(model.input, dict) else model.inputs[0]
        self.max_particles, self.n_features = int(spec.shape[1]), int(spec.shape[2])
        self.widths = {name: int(model.output[name].shape[-1]) for name in ("logits", "latent", "distances")}
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            @tf.function(input_signature=[tf.TensorSpec((None, self.max_particles, self.n_features), tf.float32),
                                          tf.TensorSpec((None, self.max_particles), tf.float32)])
            def forward(features, mask):
                out = model({"features": features, "mask": mask}, training=False)
                return out["logits"], out["latent"], out["distances"]

            self._forward = lambda f, m: [t.numpy() for t in forward(f, m)]
        else:
            def forward_any(features, mask):
                out = model.predict_on_batch({"features": features, "mask": mask})
                return [np.asarray(out[n]) for n in ("logits", "latent", "distances")]

            self._forward = forward_any

    def __call__(self, features: np.ndarray, mask: np.ndarray, batch_size: int = 1024) -> dict[str, np.ndarray]:
        """``logits``, ``latent`` and ``distances`` for every jet, run ``batch_size`` jets at a time."""
        names = ("logits", "latent", "distances")
        parts: dict[str, list[np.ndarray]] = {n: [np.zeros((0, self.widths[n]), np.float32)] for n in names}
        for start in range(0, len(features), batch_size):
            out = self._forward(features[start:start + batch_size], mask[start:start + batch_size])
            for name, values in zip(names, out, strict=True):
                parts[name].append(values)
        return {n: np.concatenate(v) for n, v in parts.items()}


def load_predictor(path: str) -> Predictor:
    """The process-wide cached predictor of the model file at ``path``."""
    if path not in _MODELS:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # executors do not inherit the driver's setting
        _set_threads()
        import keras

        import ucluster.model  # noqa: F401 - registers the custom layers that load_model needs

        _MODELS[path] = Predictor(keras.saving.load_model(path, compile=False))
    return _MODELS[path]


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def soft_assignment(distances: np.ndarray, alpha: float) -> np.ndarray:
    """``softmax(-α (d - min d))``, the deep k-means assignment of ``ucluster.model.soft_assignments``."""
    return softmax(-alpha * (distances - distances.min(axis=-1, keepdims=True)))


def predict_arrays(predictor: Predictor, feats: np.ndarray, mask: np.ndarray, alpha: float,
                   batch_size: int = 1024, with_latent: bool = False) -> dict[str, np.ndarray]:
    """Cluster id, squared distances, soft assignment and classification scores of every jet: the one
    definition the Spark job and the MLflow model share."""
    out = predictor(feats, mask, batch_size)
    dist = out["distances"]
    result = {CLUSTER: dist.argmin(axis=-1).astype(np.int32), DISTANCES: dist, SOFT: soft_assignment(dist, alpha),
              SCORES: softmax(out["logits"])}
    if with_latent:
        result[LATENT] = out["latent"]
    return result


def _list_column(values: np.ndarray) -> pa.ListArray:
    n, width = values.shape
    offsets = pa.array(np.arange(0, (n + 1) * width, width, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(np.ascontiguousarray(values, np.float32).ravel()))


def new_columns(with_latent: bool) -> list[str]:
    """The columns the model adds, in output order."""
    return [CLUSTER, DISTANCES, SOFT, SCORES] + ([LATENT] if with_latent else [])


def output_columns(input_columns: list[str], with_latent: bool) -> list[str]:
    """Column order of the assignment output: jet_key, the model's columns, the carried dataset columns, split."""
    carried = [c for c in CARRIED if c in input_columns and c != S.JET_KEY]
    return [S.JET_KEY, *new_columns(with_latent), *carried] + (["split"] if "split" in input_columns else [])


@dataclass(frozen=True)
class AssignSpec:
    """Everything a task needs besides the data (small and picklable: it travels with every task)."""

    model_file: str  # name registered with SparkContext.addFile, or a path every executor can read
    feature_names: tuple[str, ...]  # of the dataset (checked against the model on the driver)
    n_particles: int  # of the dataset
    max_particles: int  # of the model
    alpha: float
    batch_size: int = 1024
    with_latent: bool = False

    def dataset_meta(self) -> S.DatasetMeta:
        return S.DatasetMeta(feature_names=list(self.feature_names), n_particles=self.n_particles, class_names=[],
                             split_fractions={})


def assign_columns(features: pa.Array, n_particles: pa.Array, predictor: Predictor | None,
                   spec: AssignSpec) -> pa.StructArray:
    """One Arrow batch of (features, n_particles) -> a struct of cluster, distances, soft assignment, scores
    (and latent), row for row. ``predictor`` may be None only for an empty batch."""
    names = new_columns(spec.with_latent)
    if len(features) == 0:
        empty = [pa.array([], pa.int32()) if n == CLUSTER else pa.array([], pa.list_(pa.float32())) for n in names]
        return pa.StructArray.from_arrays(empty, names=names)
    n = n_particles.to_numpy(zero_copy_only=False)
    feats, mask = model_inputs(features, n, spec.dataset_meta(), spec.max_particles)
    out = predict_arrays(predictor, feats, mask, spec.alpha, spec.batch_size, spec.with_latent)
    arrays = [pa.array(out[CLUSTER], pa.int32()) if c == CLUSTER else _list_column(out[c]) for c in names]
    return pa.StructArray.from_arrays(arrays, names=names)


def model_file_path(name: str) -> str:
    """An executor's local copy of a file shipped with ``SparkContext.addFile`` (or ``name`` itself if a path)."""
    if os.path.isabs(name) and os.path.isfile(name):
        return name
    from pyspark import SparkFiles

    return SparkFiles.get(name)


def assign_stream(batches: Iterator[tuple[pa.Array, pa.Array]], spec: AssignSpec) -> Iterator[pa.StructArray]:
    """The body of the job's scalar-iterator Arrow UDF: only the two input columns travel to Python and only the
    model's columns come back (the carried columns stay in the JVM, as with ``mlflow.pyfunc.spark_udf``). The
    model is loaded at the first non-empty batch (once per Python worker)."""
    predictor = None
    for features, n_particles in batches:
        if predictor is None and len(features):
            predictor = load_predictor(model_file_path(spec.model_file))
        yield assign_columns(features, n_particles, predictor, spec)
