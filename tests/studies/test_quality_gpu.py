"""The single-device JAX trainer and the GPU quality job (studies/quality_gpu.py) on real Pythia jets, on the CPU.

The trainer runs in a subprocess because the Keras backend is fixed when keras is first imported (the test
session imports it with TensorFlow).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from studies import quality_gpu
from ucluster.data import schema as S
from ucluster.train import schedule

REPO = Path(__file__).resolve().parents[2]


def _read(root: Path, split: str) -> dict:
    files = S.split_files(root, split)
    table = pa.concat_tables([pq.read_table(f) for f in files])
    meta = S.read_meta(root)
    order = np.argsort(table.column(S.JET_KEY).to_numpy())
    return {"key": table.column(S.JET_KEY).to_numpy()[order], "label": table.column(S.LABEL).to_numpy()[order],
            "mass": table.column(S.JET_MASS).to_numpy()[order],
            "n": table.column(S.N_PARTICLES).to_numpy()[order],
            "features": S.decode_features(table.column(S.FEATURES), meta.n_particles, meta.n_features)[order]}


def test_pack_unpack_keeps_the_selected_jets(jet_dataset, tmp_path):
    parts = quality_gpu.pack(str(jet_dataset), tmp_path / "packed", ["w", "z", "t"], 10.0, 250.0, part_mb=0.2)
    assert len(parts) > 1  # the budget splits the data into several parts
    out = quality_gpu.unpack(tmp_path / "packed", tmp_path / "jets.parquet")
    assert not (tmp_path / "jets.parquet.tmp").exists()
    for split in ("train", "test", "val"):
        src, dst = _read(jet_dataset, split), _read(out, split)
        keep = (src["mass"] > 10) & (src["mass"] < 250)
        np.testing.assert_array_equal(dst["key"], src["key"][keep])
        np.testing.assert_array_equal(dst["label"], src["label"][keep])
        np.testing.assert_array_equal(dst["mass"], src["mass"][keep])
        np.testing.assert_array_equal(dst["n"], src["n"][keep])
        # float16 rounding of the features, zero padding kept exactly
        # float16 rounding of the packed features; the derived ones are recomputed from them (within the
        # tolerance pack checks); zero padding kept exactly
        np.testing.assert_allclose(dst["features"], src["features"][keep], rtol=1e-3,
                                   atol=quality_gpu.DERIVED_TOLERANCE)
        padded = np.arange(dst["features"].shape[1])[None, :] >= dst["n"][:, None]
        assert not dst["features"][padded].any()
    meta = S.read_meta(out)
    assert sum(meta.counts["train"].values()) == len(_read(out, "train")["key"])
    with pytest.raises(S.DatasetError, match="no packed parts"):
        quality_gpu.unpack(tmp_path / "nothing", tmp_path / "other.parquet")


def test_quality_gpu_run_under_jax(tiny_config, tmp_path):
    """Floor, mass cuts, supervised and two seeds, end to end with KERAS_BACKEND=jax; the history follows the
    project's schedules."""
    pytest.importorskip("jax")
    cfg = tiny_config
    out = tmp_path / "q.json"
    flags = ["--data", cfg.data.path, "--seeds", "1,2", "--json", str(out)]
    for key, value in cfg.flat().items():
        if key.startswith(("data.", "model.", "train.")) and key != "data.path":
            flags += [f"--{key}", ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "studies.quality_gpu", "run", *flags], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "| supervised, same network (ceiling) |" in proc.stdout and "UCluster seed 2" in proc.stdout
    report = json.loads(out.read_text())
    assert set(report["ucluster"]) == {"1", "2"}
    for run in [report["supervised"], *report["ucluster"].values()]:
        history = run["history"]
        assert [h["epoch"] for h in history] == list(range(cfg.train.epochs))
        for epoch, h in enumerate(history):
            assert h["lr"] == pytest.approx(schedule.learning_rate(cfg.train, epoch, 1))
            assert h["alpha"] == pytest.approx(schedule.alpha(cfg.train, epoch))
            assert ("test_cluster_acc" in h) == schedule.is_clustering(cfg.train, epoch)
            assert ("val_cluster_acc" in h) == schedule.is_clustering(cfg.train, epoch)
            assert np.isfinite(h["loss"]) and 0 <= h["test_class_acc"] <= 1
        assert 1 / 3 - 1e-9 <= run["test_cluster_acc"]  # the best matching of 3 x 3 is >= 1/3
        assert run["test_cluster_acc"] <= 1 and 0 <= run["init_test_cluster_acc"] <= 1
        assert set(run["purity"]) == {"w", "z", "t"}
    # seeds differ, so their runs do
    a, b = (report["ucluster"][s]["history"][0]["loss"] for s in ("1", "2"))
    assert a != b
    summary = report["summary"]
    assert summary["supervised_acc"] == pytest.approx(report["supervised"]["test_class_acc"])


def test_quality_gpu_cli_errors(tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert quality_gpu.main(["pack", "--data", str(tmp_path), "--out", str(tmp_path / "full")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert quality_gpu.main(["unpack", "--packed", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "no packed parts" in capsys.readouterr().err
