"""One-file checkpoints (model + optimizer variables + training state), written atomically by rank 0."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ucluster.atomic import atomic_write_bytes

CHECKPOINT = "checkpoint.npz"


def checkpoint_path(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoint" / CHECKPOINT


def save_checkpoint(output_dir: str | Path, model, optimizer, state: dict) -> Path:
    arrays = {f"model_{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    arrays.update({f"optim_{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)})
    arrays["state"] = np.frombuffer(json.dumps(state).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path = checkpoint_path(output_dir)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_weights(output_dir: str | Path, name: str, weights: list[np.ndarray]) -> Path:
    """A set of model weights beside the checkpoint (e.g. the epoch selected on val), written atomically."""
    buf = io.BytesIO()
    np.savez(buf, *weights)
    path = checkpoint_path(output_dir).with_name(f"{name}.weights.npz")
    atomic_write_bytes(path, buf.getvalue())
    return path


def read_weights(output_dir: str | Path, name: str) -> list[np.ndarray]:
    path = checkpoint_path(output_dir).with_name(f"{name}.weights.npz")
    if not path.is_file():
        raise ValueError(f"{path}: the weights named in the checkpoint are missing")
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


def read_state(output_dir: str | Path) -> dict | None:
    path = checkpoint_path(output_dir)
    if not path.is_file():
        return None
    with np.load(path) as data:
        return json.loads(data["state"].tobytes().decode())


def restore_checkpoint(output_dir: str | Path, model, optimizer) -> dict:
    """Load variables into an already built model/optimizer of the same configuration; returns the state."""
    path = checkpoint_path(output_dir)
    with np.load(path) as data:
        model_keys = sorted(k for k in data.files if k.startswith("model_"))
        optim_keys = sorted(k for k in data.files if k.startswith("optim_"))
        if len(model_keys) != len(model.variables) or len(optim_keys) != len(optimizer.variables):
            raise ValueError(f"{path}: checkpoint does not match the model built from this configuration")
        for key, var in zip(model_keys, model.variables, strict=True):
            var.assign(data[key])
        for key, var in zip(optim_keys, optimizer.variables, strict=True):
            var.assign(data[key])
        return json.loads(data["state"].tobytes().decode())
