"""The trained model as an MLflow Model: ``mlflow.pyfunc.load_model``, ``spark_udf`` and ``mlflow models serve``.

Why a ``pyfunc`` wrapper and not the bare Keras flavor: what a physicist holds is a converted Parquet dataset,
whose jets are a ``features`` binary column (P x F float32, particle-major) and ``n_particles``. The Keras model
wants decoded (B, P', F) arrays and a mask, and returns distances and logits, not clusters. The wrapper takes the
dataset's own columns (so ``spark_udf`` applies it to ``spark.read.parquet(...)`` as it is, and a REST request
carries rows of that table, base64 for the binary column), slices to the model's P', builds the mask exactly as
training does (:func:`ucluster.data.loader.model_inputs`) and returns the cluster id, squared distances, soft
assignment (α of the selected epoch, overridable per call) and classification scores.

Everything needed to apply the model travels in it: ``model.keras`` (weights, centroids, the input
standardisation of its ``input_scaling`` layer) and ``ucluster_model.json`` (feature names, P, classes, α, the
training run and config), plus the ``ucluster`` package itself as MLflow ``code_paths`` (the custom layers).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.pyfunc import PythonModel

from ucluster.data import schema as S
from ucluster.inference import predict as P

KERAS_KEY, CARD_KEY = "keras_model", "model_card"
OUTPUTS = (P.CLUSTER, P.DISTANCES, P.SOFT, P.SCORES)


def _bad_input(message: str):
    """An input error the scoring server answers with HTTP 400 and this line."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def decode_rows(features: Any, n_particles: Any, n_features: int, max_particles: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, P', F) features and (B, P') mask from a column of per-jet byte strings and the particle counts.

    The dataset's particle count P is read off the byte length (4 F bytes per particle); the model reads its
    leading P' <= P particles. Raises ``ValueError`` (one line) for rows of other lengths.
    """
    import pyarrow as pa

    from ucluster.data.loader import model_inputs

    values = list(features)
    n = np.asarray(n_particles, dtype=np.int64)
    if len(values) != len(n):
        raise ValueError(f"features has {len(values)} rows, n_particles {len(n)}")
    if not values:
        return (np.zeros((0, max_particles, n_features), np.float32), np.zeros((0, max_particles), np.float32))
    lengths = {len(v) if isinstance(v, bytes | bytearray | memoryview) else -1 for v in values}
    if -1 in lengths:
        raise ValueError("features must be binary values (P x F float32, particle-major, as in the dataset)")
    if len(lengths) != 1:
        raise ValueError(f"features values have different lengths {sorted(lengths)[:4]} bytes: one dataset at a time")
    width = lengths.pop()
    if width % (4 * n_features) or width == 0:
        raise ValueError(f"features values of {width} bytes are not P x {n_features} float32 (the model's "
                         f"{n_features} features per particle)")
    dataset_p = width // (4 * n_features)
    if dataset_p < max_particles:
        raise ValueError(f"features hold {dataset_p} particles per jet, the model reads {max_particles}")
    if n.min() < 0 or n.max() > dataset_p:
        raise ValueError(f"n_particles must lie in [0, {dataset_p}], got {int(n.min())}..{int(n.max())}")
    column = pa.array(values, type=pa.binary(width))
    meta = S.DatasetMeta(feature_names=[f"f{i}" for i in range(n_features)], n_particles=dataset_p,
                         class_names=[], split_fractions={})
    return model_inputs(column, n, meta, max_particles)


class UClusterModel(PythonModel):
    """UCluster as a pyfunc: dataset rows (``features`` binary, ``n_particles``) -> clusters and scores."""

    def load_context(self, context) -> None:
        self.card = json.loads(Path(context.artifacts[CARD_KEY]).read_text())
        self.predictor = P.load_predictor(context.artifacts[KERAS_KEY])

    def predict(self, context, model_input, params: dict | None = None):
        import pandas as pd

        params = params or {}
        names = params.get("feature_names")
        if names:
            given = [s.strip() for s in str(names).split(",")]
            if self.card.get("feature_names") and given != list(self.card["feature_names"]):
                raise _bad_input(f"feature_names: the model was trained on {self.card['feature_names']}, "
                                 f"the data has {given}")
        alpha = float(params.get("alpha") if params.get("alpha") is not None else self.card["alpha"])
        if not np.isfinite(alpha) or alpha < 0:
            raise _bad_input(f"alpha must be >= 0, got {alpha}")
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        missing = [c for c in (S.FEATURES, S.N_PARTICLES) if c not in model_input.columns]
        if missing:
            raise _bad_input(f"input lacks column(s) {missing} (give the dataset's features and n_particles)")
        try:
            feats, mask = decode_rows(model_input[S.FEATURES], model_input[S.N_PARTICLES],
                                      self.predictor.n_features, self.predictor.max_particles)
        except (ValueError, S.DatasetError) as exc:
            raise _bad_input(str(exc)) from None
        out = P.predict_arrays(self.predictor, feats, mask, alpha)
        return pd.DataFrame({P.CLUSTER: out[P.CLUSTER].astype(np.int64),
                             **{name: list(out[name]) for name in OUTPUTS[1:]}})


def signature(alpha: float):
    """Input: the dataset's two columns; output: cluster id and three float arrays; params: α, feature names.
    (Array lengths are not part of an MLflow schema: the card records K and the number of classes.)"""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema([ColSpec("binary", S.FEATURES), ColSpec("long", S.N_PARTICLES)])
    outputs = Schema([ColSpec("long", P.CLUSTER)] + [ColSpec(Array("float"), name) for name in OUTPUTS[1:]])
    params = ParamSchema([ParamSpec("alpha", "double", float(alpha)), ParamSpec("feature_names", "string", "")])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def input_example(table, rows: int = 2):
    """The first ``rows`` jets of a Parquet table, as the model takes them."""
    import pandas as pd

    part = table.slice(0, rows)
    return pd.DataFrame({S.FEATURES: [bytes(v) for v in part.column(S.FEATURES).to_pylist()],
                         S.N_PARTICLES: np.asarray(part.column(S.N_PARTICLES).to_numpy(), np.int64)})


def example_rows(root: str | Path | None, rows: int = 2):
    """The first jets of a dataset's test split as the model's input example (None where it cannot be read).

    Training and ``jobs/export.py --register-name`` both log this one, so every version shows the same example
    in the MLflow UI and ``mlflow models serve`` validates it alike.
    """
    import pyarrow.parquet as pq

    files = S.split_files(root, "test") if root else []
    if not files:
        return None
    try:
        table = pq.ParquetFile(files[0]).read_row_group(0, columns=[S.FEATURES, S.N_PARTICLES])
    except (OSError, ValueError, KeyError):  # unreadable or not a converted dataset: log the model without one
        return None
    return input_example(table, rows)


def package_dir() -> str:
    """The ``ucluster`` package directory, shipped as the model's code."""
    return str(Path(__file__).resolve().parent.parent)


def _model_arguments(keras_path: str | Path, card: dict, tmp: Path) -> dict:
    """What ``save_model`` and ``log_model`` both take: the wrapper, its two artifacts (staged in ``tmp`` under
    the names the loaders look for), the code, the signature and the requirements."""
    card_path, keras_copy = tmp / "ucluster_model.json", tmp / "model.keras"
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    shutil.copyfile(keras_path, keras_copy)
    return {"python_model": UClusterModel(), "artifacts": {KERAS_KEY: str(keras_copy), CARD_KEY: str(card_path)},
            "code_paths": [package_dir()], "signature": signature(card["alpha"]), "pip_requirements": _requirements()}


def save_pyfunc(keras_path: str | Path, card: dict, path: str | Path, example=None) -> None:
    """Write the MLflow model directory (MLmodel, artifacts, code, input example) to ``path`` without any
    tracking store."""
    import logging

    import mlflow

    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)  # as in log_pyfunc
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.pyfunc.save_model(str(path), input_example=example, **_model_arguments(keras_path, card, Path(tmp)))


def log_pyfunc(keras_path: str | Path, card: dict, example=None, name: str = "model",
               registered_model: str = "") -> tuple[Any, str | None, str | None]:
    """Log the model to the active run as an MLflow pyfunc; register it as ``registered_model`` if given.

    Returns ``(model_info, "name/version" or None, note or None)``: a store without a registry (or one that
    refuses) leaves a note instead of failing the training that produced the model.
    """
    import logging

    import mlflow
    from mlflow.exceptions import MlflowException

    # MLflow warns that it cannot infer pip requirements from a sample run; the installed ones are stated.
    logging.getLogger("mlflow.utils.environment").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        arguments = _model_arguments(keras_path, card, Path(tmp))
        info = mlflow.pyfunc.log_model(name=name, input_example=example, **arguments)
    if not registered_model:
        return info, None, None
    try:
        version = mlflow.register_model(info.model_uri, registered_model,
                                        tags={"alpha": str(card["alpha"]), "n_clusters": str(card["n_clusters"])})
        return info, f"{registered_model}/{version.version}", None
    except MlflowException as exc:
        return info, None, f"model not registered as {registered_model!r}: {str(exc).strip().splitlines()[0]}"


def _requirements() -> list[str]:
    """What the model needs to run, at the versions it was trained with (Horovod and Spark are not needed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in ("tensorflow-cpu", "keras", "numpy", "pandas", "pyarrow", "h5py", "mlflow"):
        try:
            out.append(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            continue
    return out
