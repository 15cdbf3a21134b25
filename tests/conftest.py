"""Shared pytest fixtures."""

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyspark.sql import SparkSession


@pytest.fixture(scope="session")
def spark():
    """One small local SparkSession for the whole test run (starting the JVM takes seconds)."""
    # Python workers must run this interpreter (the venv), not whatever `python3` is first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("ucluster-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    yield session
    session.stop()


# Small enough to train in seconds on 2 cores (tiny_config, trained).
TINY = {
    "data.max_particles": 30, "data.shuffle_buffer": 256,
    "model.k": 6, "model.gap1_channels": 8, "model.gap2_channels": 8, "model.gap2_heads": 2,
    "model.point_channels": "16,16", "model.latent_dim": 16, "model.head_units": "16",
    "model.dropout": 0.0, "model.mass_bins": 8,
    "train.batch_size": 32, "train.pretrain_epochs": 1, "train.epochs": 3, "train.kmeans_sample": 300,
    "run.np": -1, "run.progress": False,
}


# --- real Pythia jets, generated once per test session (small and seeded) -------------------------------
JETS_PER_KIND = 200


@pytest.fixture(scope="session")
def pythia_h5_dir(tmp_path_factory):
    """hls4ml-layout HDF5 files of real Pythia 8 W, Z and top jets (one file per kind, fixed seeds)."""
    from ucluster.sim.pythia_jets import generate_jets, write_hls4ml_file

    out = tmp_path_factory.mktemp("pythia_h5")
    for kind, seed in (("w", 101), ("z", 102), ("t", 103)):
        constituents, jets = generate_jets(kind, JETS_PER_KIND, seed)
        write_hls4ml_file(out / f"{kind}.h5", constituents, jets)
    return out


@pytest.fixture(scope="session")
def jet_dataset(pythia_h5_dir, tmp_path_factory):
    """The Pythia files converted to a Parquet dataset (in-process conversion)."""
    from conversion.convert import convert

    out = tmp_path_factory.mktemp("dataset") / "jets.parquet"
    convert(str(pythia_h5_dir), out, progress=False, row_group_size=64)
    return out


@pytest.fixture(scope="session")
def tiny_overrides(jet_dataset) -> dict:
    """TINY on the session's Pythia dataset, as config overrides (for fixtures wider than one test)."""
    return {**TINY, "data.path": str(jet_dataset)}


@pytest.fixture
def tiny_config(tiny_overrides, tmp_path):
    """A configuration small enough to train in seconds on 2 cores, on the session's Pythia dataset."""
    from ucluster.config import load_config

    return load_config(None, {**tiny_overrides, "run.output_dir": str(tmp_path / "run")})


# --- a tiny model trained for real once per session (about 20 s here) -------------------------------------
@pytest.fixture(scope="session")
def trained(tiny_overrides, tmp_path_factory):
    """Train the tiny model (3 epochs on 1 Horovod worker; α of the epoch selected on val: 10 or 12) into a fresh
    directory with its own MLflow store.

    Session-scoped rather than per module: the inference tests only read the model (and log evaluations beside
    it); the trainer tests check this run's records; and, being deterministic (run.deterministic), it is the
    uninterrupted reference that the resume and fault tests compare their interrupted runs with. Every 1-worker
    training fewer saves ~20 s on two cores."""
    from ucluster.config import load_config
    from ucluster.train.trainer import train

    out = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        cfg = load_config(None, {**tiny_overrides, "run.output_dir": str(out / "run"), "run.deterministic": True})
        result = train(cfg)
    return SimpleNamespace(cfg=cfg, result=result, run_id=result["run_id"], run_dir=Path(cfg.run.output_dir),
                           model_path=Path(result["model_path"]), alpha=result["alpha"])


@pytest.fixture(scope="session")
def two_horovod_workers(tiny_overrides, tmp_path_factory):
    """The tiny model trained on 2 Horovod worker processes (3 epochs, deterministic): the engine comparison
    (tests/train/test_engines.py) and the learning-rate scaling check (tests/train/test_trainer.py) read the same
    run instead of each training their own. ``stderr`` holds what the driver printed."""
    import contextlib
    import io

    from ucluster.config import load_config
    from ucluster.train.trainer import train

    out = tmp_path_factory.mktemp("two_horovod_workers")
    cfg = load_config(None, {**tiny_overrides, "run.output_dir": str(out / "run"), "run.engine": "horovod",
                             "run.np": -2, "run.deterministic": True})
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        result = train(cfg)
    return SimpleNamespace(cfg=cfg, result=result, stderr=err.getvalue())


@pytest.fixture(scope="session", autouse=True)
def _jax_compilation_cache(tmp_path_factory):
    """The JAX subprocesses of one test session share a persistent XLA compilation cache, in a temp dir that is
    new every session (so every session compiles each program once, from scratch). Several of them compile the
    same programs (the tiny UCluster steps of jobs/train.py --engine jax in test_loop and in every run of
    test_quality_gpu): the later ones load the executable instead of compiling it again (~10 s each)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path_factory.mktemp("jax_cache")))
        yield
