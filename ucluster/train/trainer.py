"""The training job: checks on the driver, then the one training loop on every worker.

:func:`train` validates the inputs cheaply (:func:`preflight`), then launches :func:`train_worker` on
``|run.np|`` workers. Each worker builds the engine named by ``run.engine`` and calls
:func:`ucluster.train.loop.run`: ``horovod`` (TensorFlow + Horovod, HorovodRunner-style: local processes or
Spark tasks), ``tf_distribute`` (TensorFlow MultiWorkerMirroredStrategy: local processes or a Spark barrier
stage; ``auto`` picks it where Horovod does not import) or ``jax`` (one process on its local JAX devices,
data-parallel over ``run.devices`` of them, ``KERAS_BACKEND=jax``: the GPU path).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ucluster.config import Config, config_from_dict
from ucluster.data import schema as S
from ucluster.data.loader import JetStream, target_columns
from ucluster.train import checkpoint as ckpt
from ucluster.train import loop
from ucluster.train.loop import TrainingError, n_classes, validation_stream

__all__ = ["MIN_SHUFFLE_SPAN", "TrainingError", "n_classes", "preflight", "train", "train_worker"]

REQUIRED_COLUMNS = (S.FEATURES, S.N_PARTICLES, S.LABEL, S.JET_MASS, S.JET_PT, S.JET_KEY)
# Row groups a shuffle buffer should span: with three classes in single-class files, 16 row groups keep each
# class's share of a buffer within about +-12 points (binomial spread of 16 draws).
MIN_SHUFFLE_SPAN = 16


# --------------------------------------------------------------------------------------------------------
# Checks on the driver, before any worker starts
# --------------------------------------------------------------------------------------------------------
def preflight(cfg: Config, n_workers: int) -> dict:
    """Everything that can be wrong with the inputs, checked cheaply before launching workers."""
    import pyarrow.parquet as pq

    if not cfg.data.path:
        raise TrainingError("no dataset given (--data PATH or data.path in the config)")
    meta = S.read_meta(cfg.data.path)
    counts = {}
    for split in ("train", "test"):
        files = S.split_files(cfg.data.path, split)
        if not files:
            raise TrainingError(f"{cfg.data.path}: split '{split}' is empty or missing")
        try:
            names = pq.read_schema(files[0]).names
        except Exception as exc:  # noqa: BLE001
            raise TrainingError(f"{files[0]}: corrupt Parquet file ({str(exc).splitlines()[0]})") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise TrainingError(f"{files[0]}: dataset lacks column(s) {missing} needed for training")
    lacking = [c for c in target_columns(cfg) if c not in meta.substructure_columns]
    if lacking:  # e.g. the default hybrid-mass target on files without j_mass_mmdt
        raise TrainingError(f"{cfg.data.path}: model.target={cfg.model.target} needs column(s) {lacking}, which the "
                            "dataset lacks (convert files that carry j_mass_mmdt and the N-subjettiness), or train "
                            "on the ungroomed mass: --model.target mass_bins --train.kmeans_space latent")
    # Training jets are counted per worker shard (they sum to the split's count): read once, checked twice.
    shards = [JetStream(cfg, "train", r, n_workers, meta) for r in range(n_workers)]
    shard_rows = [shard.selected_rows() for shard in shards]
    counts["train"] = sum(shard_rows)
    counts["test"] = JetStream(cfg, "test", 0, 1, meta).selected_rows()
    val = validation_stream(cfg, 0, 1, meta)
    counts["val"] = val.selected_rows() if val is not None else 0
    need = cfg.train.batch_size * n_workers
    if counts["train"] < need:
        raise TrainingError(
            f"{cfg.data.path}: {counts['train']} training jets pass the selection, fewer than one batch per worker "
            f"({cfg.train.batch_size} x {n_workers}); lower train.batch_size or add data")
    if n_workers > 1:  # workers own whole row groups: each shard must still hold a batch
        if min(shard_rows) < cfg.train.batch_size:
            raise TrainingError(
                f"{cfg.data.path}: worker shards hold {shard_rows} selected training jets, and each needs at least "
                f"one batch of {cfg.train.batch_size}; the split has too few row groups for {n_workers} workers "
                "(re-convert with a smaller --row-group-size, or lower train.batch_size)")
    warnings = []
    sizes = sorted(ref.num_rows for shard in shards for ref in shard.refs)  # the shards hold every row group
    typical = max(sizes[len(sizes) // 2], 1)
    if cfg.data.shuffle_buffer < min(MIN_SHUFFLE_SPAN * typical, max(shard_rows)):
        warnings.append(
            f"data.shuffle_buffer = {cfg.data.shuffle_buffer} jets spans only ~{cfg.data.shuffle_buffer / typical:.1f} "
            f"row groups of ~{typical} jets: if the files are sorted by class (one file per process), batches will "
            f"not be mixed; raise it to >= {MIN_SHUFFLE_SPAN * typical}")
    if counts["test"] == 0:
        raise TrainingError(f"{cfg.data.path}: no test jets pass the selection (classes {cfg.data.classes}, "
                            f"mass {cfg.data.mass_min}-{cfg.data.mass_max} GeV)")
    try:
        state = ckpt.read_state(cfg.run.output_dir)
    except ckpt.CheckpointError as exc:  # before any worker starts: one line naming the file, and what to do
        action = "--resume cannot continue from it" if cfg.run.resume else "it is in the way of a new run"
        raise TrainingError(f"{exc}; {action}: restore the file, or remove it to start over, or choose "
                            "another --out") from None
    if cfg.run.resume and state is None:
        raise TrainingError(f"--resume: no checkpoint in {cfg.run.output_dir}")
    if not cfg.run.resume and state is not None and not state.get("finished"):
        raise TrainingError(f"{cfg.run.output_dir} holds the checkpoint of unfinished run {state.get('run_id')} "
                            "(epoch {}); pass --resume to continue it or choose another --out".format(state["epoch"]))
    if cfg.run.resume:
        _check_resume_compatible(cfg, state)
    return {"selected_jets": counts, "n_features": meta.n_features, "warnings": warnings}


def _check_resume_compatible(cfg: Config, state: dict) -> None:
    new = cfg.flat()
    changed = ckpt.changed_fields(config_from_dict(state["config"]).flat(), new)  # the data: by its fingerprint
    if changed:
        raise TrainingError(f"--resume: config differs from the checkpoint in {changed[:5]} (only train.epochs "
                            "and run.* may change)")
    reason = ckpt.check_compatible(ckpt.checkpoint_path(cfg.run.output_dir), state, new, cfg.data.path)
    if reason:
        raise TrainingError(f"--resume: {reason}")
    if state.get("n_workers") not in (None, abs(cfg.run.np)):
        raise TrainingError(f"--resume: the checkpoint was written with {state['n_workers']} worker(s), "
                            f"this run asks for {abs(cfg.run.np)}")


# --------------------------------------------------------------------------------------------------------
# The worker
# --------------------------------------------------------------------------------------------------------
def train_worker(config: dict, run_id: str | None = None, attempt: int = 0, restart: dict | None = None) -> dict:
    """Entry point of every worker: build the configured engine, run the one training loop. Returns the final
    figures (rank 0's are what the launcher returns). Its status file (:mod:`ucluster.train.faults`) tells the
    driver what it was doing if it dies."""
    from ucluster.train.engines import make_engine
    from ucluster.train.faults import WorkerStatus

    cfg = config_from_dict(config)
    engine = make_engine(cfg.run.engine, cfg.run.deterministic, cfg.run.threads_per_worker, cfg.run.devices)
    status = WorkerStatus(cfg.run.output_dir, engine.rank, attempt)
    try:
        result = loop.run(cfg, engine, run_id=run_id, heartbeat=status.epoch, restart=restart)
    except BaseException as exc:
        status.failed(exc)
        raise
    status.write(phase="finished")
    return result


def train(cfg: Config, spark=None) -> dict:
    """Validate on the driver, then run :func:`train_worker` on ``|run.np|`` workers of ``run.engine``."""
    import dataclasses

    from ucluster.tracking import launch_source

    if not cfg.run.source or not cfg.run.source_commit:  # the workers run Horovod's launcher, not the job
        source, commit = launch_source()
        cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, source=cfg.run.source or source,
                                                               source_commit=cfg.run.source_commit or commit))
    runner = None
    if cfg.run.engine == "jax":  # one process, its local devices (run.devices): no launcher
        if cfg.run.np != -1:
            raise TrainingError(f"run.engine=jax trains in this process on its local devices (run.devices); "
                                f"run.np must be -1, not {cfg.run.np}")
    else:
        from ucluster.distributed import RUNNERS, resolve_engine

        engine, why = resolve_engine(cfg.run.engine)
        if engine != cfg.run.engine:  # the workers (and the checkpoint, and MLflow) see the engine that runs
            cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, engine=engine))
        runner = RUNNERS[engine](np=cfg.run.np, spark=spark)
        runner.check_slots()
    for warning in preflight(cfg, runner.num_workers if runner else 1)["warnings"]:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    if runner is not None:  # said once the inputs passed: the engine that now starts, and why
        print(f"engine: {cfg.run.engine} ({why})", file=sys.stderr, flush=True)
    Path(cfg.run.output_dir).mkdir(parents=True, exist_ok=True)
    from ucluster.train.supervisor import supervise

    return supervise(cfg, runner, train_worker)
