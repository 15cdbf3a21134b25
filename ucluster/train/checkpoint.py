"""One-file checkpoints (model + optimizer variables + training state), written atomically by rank 0.

A checkpoint exists to survive the failure that interrupts training, so it is one ``.npz`` written to a synced
temporary sibling and renamed into place (:func:`ucluster.atomic.atomic_write_bytes`): a writer killed at any
point leaves the previous checkpoint intact (tests/faults kill it mid-write). It holds everything a restart
needs to continue exactly where the last epoch ended:

* every model variable (weights, centroids, batch-norm statistics, the input scaling, and Keras' seed-generator
  states, i.e. the dropout RNG) and every optimizer variable (Adam moments, iteration count, lr);
* the weights of the epoch selected on val (``best_*``), in the same file, so they always match the state;
* the state: last finished epoch, history, MLflow run id, the config, ``config_hash`` and the ``dataset``
  fingerprint, and ``rng`` (the shuffle of an epoch is a pure function of ``train.seed``, the epoch and the
  rank, so the next epoch number is the shuffle position).

A checkpoint written for another configuration or another dataset is refused with one line
(:func:`check_compatible`); one that cannot be read raises :class:`CheckpointError`, a one-line message naming
the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ucluster.atomic import atomic_write_bytes
from ucluster.train.faults import first_line

CHECKPOINT = "checkpoint.npz"
FORMAT = 2  # 2: config hash, dataset fingerprint and the best weights inside the checkpoint


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read or does not fit the model (one line naming the file). A ValueError,
    so callers that probe a checkpoint (the model source) keep treating it as "no usable checkpoint"; its name is
    in :data:`ucluster.train.faults.FATAL`: a restart would read the same file and fail the same way."""


def checkpoint_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoint" / CHECKPOINT


def _allowed_to_change(key: str) -> bool:
    """Fields a resume may change: where and how the run goes (run.*) and how long it trains."""
    return key.startswith("run.") or key in ("train.epochs", "data.path")  # the data: by fingerprint


def changed_fields(old: dict, new: dict) -> list[str]:
    """The fields of flat config ``new`` that a resume may not change and whose value differs in ``old``."""
    return [k for k in new if not _allowed_to_change(k) and old.get(k) != new[k]]


def config_hash(flat: dict) -> str:
    """sha256 of the fields that define the training (all but run.* and train.epochs)."""
    fixed = {k: v for k, v in sorted(flat.items()) if not _allowed_to_change(k)}
    return hashlib.sha256(json.dumps(fixed, sort_keys=True, default=str).encode()).hexdigest()


def dataset_fingerprint(root: str | Path) -> str:
    """sha256 of the dataset metadata and of every Parquet file's name and size: a re-converted or different
    dataset (other jets, splits or features) gets another fingerprint, a moved copy keeps it."""
    from ucluster.data import schema as S

    root = Path(root)
    h = hashlib.sha256((root / S.META_FILE).read_bytes())
    for split in S.SPLITS:
        for f in S.split_files(root, split):
            h.update(f"{split}/{f.name}:{f.stat().st_size}\n".encode())
    return h.hexdigest()


def _clean_stale_temporaries(path: Path) -> None:
    """Remove temporary files left by a writer that was killed mid-write (only rank 0 ever writes here)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def save_checkpoint(output_dir: str | Path, model, optimizer, state: dict,
                    best_weights: list[np.ndarray] | None = None,
                    average_window: list[list[np.ndarray]] | None = None,
                    self_labels: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """Model and optimizer variables, the state, the weights selected on val, the copies of trainable weights
    that ``train.average_epochs`` averages (so that a resumed run hands out the model an uninterrupted one would)
    and the training jets' self labels of ``train.cluster_objective`` self_label (keys, labels)."""
    arrays = {f"model_{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    arrays.update({f"optim_{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)})
    if best_weights is not None:
        arrays.update({f"best_{i:04d}": np.asarray(w) for i, w in enumerate(best_weights)})
    for j, copy in enumerate(average_window or []):
        arrays.update({f"avg{j:03d}_{i:04d}": np.asarray(w) for i, w in enumerate(copy)})
    if self_labels is not None:
        arrays["self_label_keys"] = np.asarray(self_labels[0], np.int64)
        arrays["self_label_values"] = np.asarray(self_labels[1], np.int16)
    arrays["state"] = np.frombuffer(json.dumps({**state, "format": FORMAT}).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = checkpoint_path(output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_temporaries(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_weights(output_dir: str | Path, name: str, weights: list[np.ndarray]) -> Path:
    """A set of model weights beside the checkpoint, written atomically."""
    buf = io.BytesIO()
    np.savez(buf, *weights)
    path = checkpoint_path(output_dir).with_name(f"{name}.weights.npz")
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_weights(output_dir: str | Path, name: str) -> list[np.ndarray]:
    path = checkpoint_path(output_dir).with_name(f"{name}.weights.npz")
    if not path.is_file():
        raise CheckpointError(f"{path}: the weights named in the checkpoint are missing")
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def read_best_weights(output_dir: str | Path) -> list[np.ndarray]:
    """The weights of the epoch selected on val, stored in the checkpoint (``best.weights.npz`` beside
    checkpoints written before format 2)."""
    path = checkpoint_path(output_dir)
    with _open(path) as data:
        keys = sorted(k for k in data.files if k.startswith("best_"))
        if keys:
            return [data[k] for k in keys]
    return read_weights(output_dir, "best")


def read_self_labels(output_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The (sorted jet keys, cluster or -1) the checkpoint's self_label training uses."""
    path = checkpoint_path(output_dir)
    with _open(path) as data:
        if "self_label_keys" not in data.files:
            raise CheckpointError(f"{path}: no self labels stored (train.cluster_objective self_label needs them "
                                  "to resume in the clustering phase)")
        return data["self_label_keys"], data["self_label_values"].astype(np.int64)


def read_average_window(output_dir: str | Path) -> list[list[np.ndarray]]:
    """The end-of-epoch copies of the trainable weights stored for ``train.average_epochs``, oldest first
    (empty for checkpoints without them)."""
    path = checkpoint_path(output_dir)
    copies: dict[str, list[str]] = {}
    with _open(path) as data:
        for key in sorted(k for k in data.files if k.startswith("avg")):
            copies.setdefault(key.split("_")[0], []).append(key)
        return [[data[k] for k in keys] for _, keys in sorted(copies.items())]


def _unreadable(path: Path, exc: BaseException) -> CheckpointError:
    return CheckpointError(f"{path}: unreadable checkpoint ({first_line(exc)[:200]})")


def _open(path: Path):
    try:
        data = np.load(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _unreadable(path, exc) from None
    if not hasattr(data, "files"):  # a lone .npy array, not a checkpoint archive
        raise CheckpointError(f"{path}: unreadable checkpoint (a single array, not a checkpoint archive)")
    return data


def _state(path: Path, data) -> dict:
    """The JSON training state inside an open checkpoint; a missing or garbled one names the file."""
    try:
        state = json.loads(data["state"].tobytes().decode())
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # a missing or corrupt member
        raise _unreadable(path, exc) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: unreadable checkpoint (its state is not a mapping)")
    return state


def read_state(output_dir: str | Path) -> dict | None:
    """The training state of the checkpoint in ``output_dir`` (None: no checkpoint); raises
    :class:`CheckpointError` for a file that is there but cannot be read."""
    path = checkpoint_path(output_dir)
    if not path.is_file():
        return None
    with _open(path) as data:
        return _state(path, data)


def restore_checkpoint(output_dir: str | Path, model, optimizer) -> dict:
    """Load variables into an already built model/optimizer of the same configuration; returns the state."""
    path = checkpoint_path(output_dir)
    with _open(path) as data:
        model_keys = sorted(k for k in data.files if k.startswith("model_"))
        optim_keys = sorted(k for k in data.files if k.startswith("optim_"))
        if len(model_keys) != len(model.variables) or len(optim_keys) != len(optimizer.variables):
            raise CheckpointError(f"{path}: checkpoint does not match the model built from this configuration")
        for key, var in zip(model_keys, model.variables, strict=True):
            var.assign(data[key])
        for key, var in zip(optim_keys, optimizer.variables, strict=True):
            var.assign(data[key])
        return _state(path, data)


def check_compatible(path: str | Path, state: dict, flat: dict, data_path: str) -> str | None:
    """None when the checkpoint ``state`` may be continued with this config (``flat``) and dataset, else the
    one-line reason it may not."""
    old_hash = state.get("config_hash")
    new_hash = config_hash(flat)
    if old_hash is not None and old_hash != new_hash:
        from ucluster.config import config_from_dict

        old = config_from_dict(state["config"]).flat() if state.get("config") else {}
        changed = changed_fields(old, flat)
        if not old or changed:  # else only fields added since differ, read back at the values it trained with
            return (f"{path} was written for another configuration (config hash {old_hash[:12]}, this one "
                    f"{new_hash[:12]}; differs in {changed[:5] or 'fields this version does not know'}); only "
                    "train.epochs and run.* may change on a resume: restore the config or choose another --out")
    dataset = state.get("dataset")
    if dataset:
        try:
            fingerprint = dataset_fingerprint(data_path)
        except OSError:
            fingerprint = None
        if fingerprint != dataset["fingerprint"]:
            return (f"{path} was written for dataset {dataset['path']} (fingerprint {dataset['fingerprint'][:12]}), "
                    f"and {data_path} is a different dataset ({(fingerprint or 'unreadable')[:12]}); resume with the "
                    "same data or choose another --out")
    return None
