"""The UCluster training worker: one function that every Horovod rank runs.

Phases: classification-only pretraining -> k-means on a sample of latent vectors initialises the centroids ->
end-to-end classification + deep k-means. Gradients are averaged with ``horovod.tensorflow``; initial weights
and optimizer state are broadcast from rank 0; metrics are allreduced; rank 0 alone logs, checkpoints and
writes. Every rank reads only its own shard and takes the same number of steps per epoch.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ucluster.config import Config, config_from_dict
from ucluster.data import schema as S
from ucluster.data.loader import JetStream, prefetch
from ucluster.train import checkpoint as ckpt
from ucluster.train import metrics as M
from ucluster.train import schedule


class TrainingError(ValueError):
    """A problem found before or during training, reported as one line."""


REQUIRED_COLUMNS = (S.FEATURES, S.N_PARTICLES, S.LABEL, S.JET_MASS, S.JET_PT, S.JET_KEY)
# Row groups a shuffle buffer should span: with three classes in single-class files, 16 row groups keep each
# class's share of a buffer within about +-12 points (binomial spread of 16 draws).
MIN_SHUFFLE_SPAN = 16


def n_classes(cfg: Config) -> int:
    return len(cfg.data.classes) if cfg.model.target == "truth" else cfg.model.mass_bins


def has_split(cfg: Config, split: str) -> bool:
    """Whether the dataset has row groups in ``split`` (the validation split is optional)."""
    from ucluster.data.loader import list_row_groups

    return bool(S.split_files(cfg.data.path, split)) and bool(list_row_groups(cfg.data.path, split))


def validation_stream(cfg: Config, rank: int = 0, size: int = 1, meta: S.DatasetMeta | None = None):
    """The worker's shard of the validation split, or None when the dataset has none.

    Hyper-parameters and stopping points are chosen on it (``val_*`` metrics), so that the test split still
    gives an unbiased figure for the choice.
    """
    return JetStream(cfg, "val", rank, size, meta) if has_split(cfg, "val") else None


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
    state = ckpt.read_state(cfg.run.output_dir)
    if cfg.run.resume and state is None:
        raise TrainingError(f"--resume: no checkpoint in {cfg.run.output_dir}")
    if not cfg.run.resume and state is not None and not state.get("finished"):
        raise TrainingError(f"{cfg.run.output_dir} holds the checkpoint of unfinished run {state.get('run_id')} "
                            "(epoch {}); pass --resume to continue it or choose another --out".format(state["epoch"]))
    if cfg.run.resume:
        _check_resume_compatible(cfg, state)
    return {"selected_jets": counts, "n_features": meta.n_features, "warnings": warnings}


def _check_resume_compatible(cfg: Config, state: dict) -> None:
    old = config_from_dict(state["config"]).flat()
    new = cfg.flat()
    changed = [k for k in new if not k.startswith("run.") and k != "train.epochs" and old.get(k) != new[k]]
    if changed:
        raise TrainingError(f"--resume: config differs from the checkpoint in {changed[:5]} (only train.epochs "
                            "and run.* may change)")
    if state.get("n_workers") not in (None, abs(cfg.run.np)):
        raise TrainingError(f"--resume: the checkpoint was written with {state['n_workers']} worker(s), "
                            f"this run asks for {abs(cfg.run.np)}")


# --------------------------------------------------------------------------------------------------------
# The worker
# --------------------------------------------------------------------------------------------------------
@dataclass
class _Ctx:
    rank: int
    size: int
    hvd: object


def _init_horovod(deterministic: bool = False, threads: int = 0) -> _Ctx:
    import tensorflow as tf

    from ucluster.distributed import init_horovod

    if deterministic:
        tf.config.experimental.enable_op_determinism()
    hvd = init_horovod()
    threads = threads or max(1, (os.cpu_count() or 1) // hvd.local_size())
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    return _Ctx(hvd.rank(), hvd.size(), hvd)


def _allreduce_sum(ctx: _Ctx, values: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    if ctx.size == 1:
        return np.asarray(values, dtype=np.float64)
    out = ctx.hvd.allreduce(tf.constant(np.asarray(values, dtype=np.float64)), op=ctx.hvd.Sum)
    return out.numpy()


class StepFunctions:
    """Compiled train and predict steps for one model/optimizer pair (shared by trainer and tests)."""

    def __init__(self, model, optimizer, gamma: float, hvd=None, target_kernel: np.ndarray | None = None):
        import tensorflow as tf

        from ucluster.model.losses import deep_kmeans_loss, focal_loss

        self.model, self.optimizer = model, optimizer
        tf_vars = [v.value for v in model.trainable_variables]
        kernel = None if target_kernel is None else tf.constant(target_kernel)

        @tf.function
        def train_step(features, mask, target, alpha, beta):
            with tf.GradientTape() as tape:
                out = model({"features": features, "mask": mask}, training=True)
                focal = tf.reduce_mean(focal_loss(target, out["logits"], gamma, kernel))
                clus = tf.reduce_mean(deep_kmeans_loss(out["distances"], alpha))
                loss = focal + beta * clus
            if hvd is not None:
                tape = hvd.DistributedGradientTape(tape)
            grads = tape.gradient(loss, tf_vars)
            optimizer.apply(grads, model.trainable_variables)
            pred = tf.argmax(out["logits"], axis=-1, output_type=tf.int32)
            correct = tf.reduce_sum(tf.cast(tf.equal(pred, target), tf.float32))
            return tf.stack([loss, focal, clus, correct])

        @tf.function
        def predict(features, mask):
            out = model({"features": features, "mask": mask}, training=False)
            return out["logits"], out["latent"], out["distances"]

        self.train_step, self.predict = train_step, predict

    def train(self, batch: dict, alpha: float, beta: float) -> np.ndarray:
        import tensorflow as tf

        return self.train_step(batch["features"], batch["mask"], batch["target"],
                               tf.constant(alpha, tf.float32), tf.constant(beta, tf.float32)).numpy()


def train_worker(config: dict) -> dict:
    """Entry point of every rank. Returns the final metrics (rank 0's are what the launcher returns)."""
    import keras

    from ucluster.model import build_model

    cfg = config_from_dict(config)
    ctx = _init_horovod(cfg.run.deterministic, cfg.run.threads_per_worker)
    rank, size = ctx.rank, ctx.size
    meta = S.read_meta(cfg.data.path)
    train = JetStream(cfg, "train", rank, size, meta)
    test = JetStream(cfg, "test", rank, size, meta)
    val = validation_stream(cfg, rank, size, meta)
    B = cfg.train.batch_size
    local_steps = train.selected_rows() // B
    if cfg.data.max_train_jets:
        local_steps = min(local_steps, cfg.data.max_train_jets // (B * size))
    if cfg.train.steps_per_epoch:
        local_steps = min(local_steps, cfg.train.steps_per_epoch)
    steps = int(min(_allgather_int(ctx, local_steps)))
    if steps < 1:
        raise TrainingError(f"a worker's shard of {cfg.data.path} holds fewer than {B} selected training jets")

    keras.utils.set_random_seed(cfg.train.seed)  # identical initial weights everywhere (then broadcast anyway)
    model = build_model(cfg.model, cfg.data.max_particles, meta.n_features, n_classes(cfg))
    keras.utils.set_random_seed(cfg.train.seed + 7919 * rank)
    optimizer = keras.optimizers.Adam(learning_rate=schedule.learning_rate(cfg.train, 0, size))
    optimizer.build(model.trainable_variables)
    kernel = None
    if cfg.model.target == "mass_bins" and cfg.model.bin_smoothing > 0:
        from ucluster.model.losses import ordinal_kernel

        kernel = ordinal_kernel(cfg.model.mass_bins, cfg.model.bin_smoothing)
    steps_fn = StepFunctions(model, optimizer, cfg.train.gamma, ctx.hvd if size > 1 else None, kernel)

    state = {"epoch": -1, "run_id": None, "centroids_ready": False, "finished": False}
    if cfg.run.resume and rank == 0:
        state = ckpt.restore_checkpoint(cfg.run.output_dir, model, optimizer)
    if size > 1:
        state = ctx.hvd.broadcast_object(state, root_rank=0)
        ctx.hvd.broadcast_variables([v.value for v in model.trainable_variables], root_rank=0)
        ctx.hvd.broadcast_variables([v.value for v in optimizer.variables], root_rank=0)

    tracker = _Tracker(cfg, meta, steps, size, state.get("run_id")) if rank == 0 else None
    last: dict = {}
    try:
        for epoch in range(state["epoch"] + 1, cfg.train.epochs):
            clustering = schedule.is_clustering(cfg.train, epoch)
            if clustering and not state["centroids_ready"]:
                _init_centroids(cfg, ctx, model, steps_fn, train)
                state["centroids_ready"] = True
                # The clustering of the k-means initialisation itself, before any deep k-means step: what the
                # end-to-end phase adds (or loses) is the difference to the final figures.
                init = _evaluate(cfg, ctx, steps_fn, test, True)[0]
                state["init_metrics"] = {f"init_{k}": float(v) for k, v in init.items() if k != "test_class_acc"}
                if rank == 0:
                    tracker.log_metrics(state["init_metrics"], epoch)
            last = _run_epoch(cfg, ctx, epoch, steps, steps_fn, optimizer, train, test, val,
                              state["centroids_ready"])
            state.update(epoch=epoch, run_id=tracker.run_id if tracker else state["run_id"],
                         config=cfg.to_dict(), n_workers=size, finished=False)
            if rank == 0:
                tracker.log_epoch(epoch, last)
                ckpt.save_checkpoint(cfg.run.output_dir, model, optimizer, state)
        if not state["centroids_ready"] or not last:
            # No clustering epoch ran (pretraining only, or a resume of a completed schedule): the k-means
            # initialisation is the clustering result.
            if not state["centroids_ready"]:
                _init_centroids(cfg, ctx, model, steps_fn, train)
                state["centroids_ready"] = True
            last = {**last, **_evaluate(cfg, ctx, steps_fn, test, True)[0]}
        last = {**state.get("init_metrics", {}), **last}
        sample = _gather_eval_sample(cfg, ctx, steps_fn, test)
        if rank == 0:
            state["finished"] = True
            ckpt.save_checkpoint(cfg.run.output_dir, model, optimizer, state)
            result = tracker.finish(model, last, sample)
            return result
        return {"rank": rank, **last}
    except BaseException:
        if tracker:
            tracker.fail()
        raise


def _peak_rss_mb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)  # Linux reports KiB


def _allgather_int(ctx: _Ctx, value: int) -> list[int]:
    import tensorflow as tf

    if ctx.size == 1:
        return [value]
    return [int(v) for v in ctx.hvd.allgather(tf.constant([value], tf.int64)).numpy()]


def _run_epoch(cfg: Config, ctx: _Ctx, epoch: int, steps: int, fns: StepFunctions, optimizer, train: JetStream,
               test: JetStream, val: JetStream | None, centroids_ready: bool) -> dict:
    from ucluster.progress import progress

    lr = schedule.learning_rate(cfg.train, epoch, ctx.size)
    alpha = schedule.alpha(cfg.train, epoch)
    beta = cfg.train.beta if schedule.is_clustering(cfg.train, epoch) else 0.0
    optimizer.learning_rate.assign(lr)
    sums = np.zeros(4)
    bar = progress(steps, f"epoch {epoch + 1}/{cfg.train.epochs}", enabled=ctx.rank == 0 and cfg.run.progress)
    t0 = time.perf_counter()
    for batch in prefetch(train.batches(cfg.train.batch_size, steps, epoch, cfg.train.seed)):
        out = fns.train(batch, alpha, beta)
        sums += out
        bar.update(1)
        bar.set_postfix(loss=f"{out[0]:.3f}")
    seconds = time.perf_counter() - t0
    bar.close()
    sums = _allreduce_sum(ctx, sums)
    n_steps = steps * ctx.size
    jets = n_steps * cfg.train.batch_size
    metrics = {"loss": sums[0] / n_steps, "focal_loss": sums[1] / n_steps, "cluster_loss": sums[2] / n_steps,
               "train_class_acc": sums[3] / jets, "lr": lr, "alpha": alpha,
               "jets_per_s": jets / max(seconds, 1e-9), "epoch_seconds": seconds}
    eval_metrics, _ = _evaluate(cfg, ctx, fns, test, centroids_ready)
    metrics.update(eval_metrics)
    if val is not None:
        metrics.update(_evaluate(cfg, ctx, fns, val, centroids_ready, prefix="val")[0])
    metrics["worker_peak_rss_mb"] = max(_allgather_int(ctx, _peak_rss_mb()))
    return {k: float(v) for k, v in metrics.items()}


def _evaluate(cfg: Config, ctx: _Ctx, fns: StepFunctions, stream: JetStream, centroids_ready: bool,
              prefix: str = "test"):
    """Metrics of one split (``test`` or ``val``, named ``<prefix>_...``) from allreduced counts: classification
    accuracy and the cluster/class table; no metrics for a split with no selected jets."""
    k, c = cfg.model.n_clusters, len(cfg.data.classes)
    table = np.zeros((k, c))
    correct = total = 0.0
    per_rank = math.ceil(cfg.data.max_eval_jets / ctx.size) if cfg.data.max_eval_jets else 0
    for batch in prefetch(stream.eval_batches(cfg.train.batch_size, per_rank)):
        logits, _, dist = (t.numpy() for t in fns.predict(batch["features"], batch["mask"]))
        valid = batch["valid"]
        correct += float(((logits.argmax(-1) == batch["target"]) * valid).sum())
        total += float(valid.sum())
        table += M.contingency(dist.argmin(-1), batch["label"], k, c, valid)
    reduced = _allreduce_sum(ctx, np.concatenate([[correct, total], table.ravel()]))
    table = reduced[2:].reshape(k, c)
    return split_metrics(prefix, reduced[0], reduced[1], table, centroids_ready), table


def split_metrics(prefix: str, correct: float, total: float, table: np.ndarray, with_clusters: bool) -> dict:
    """``<prefix>_class_acc`` and, once the centroids exist, the clustering figures of the cluster/class table;
    empty for a split with no selected jets. Shared by the Horovod and the single-device JAX trainers."""
    if total == 0:
        return {}
    out = {f"{prefix}_class_acc": correct / total}
    if with_clusters:
        out.update({f"{prefix}_{name}": v for name, v in M.clustering_report(table).items()})
        out[f"{prefix}_min_cluster_fraction"] = float((table.sum(axis=1) / max(table.sum(), 1)).min())
    return out


def fit_centroids(cfg: Config, sample: np.ndarray) -> np.ndarray:
    """k-means (k = model.n_clusters, 10 restarts, seeded) on a sample of latent vectors: the initial centroids."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=cfg.model.n_clusters, n_init=10, random_state=cfg.train.seed).fit(sample)
    return km.cluster_centers_.astype(np.float32)


def _latents(cfg: Config, fns: StepFunctions, stream: JetStream, max_jets: int) -> np.ndarray:
    parts = []
    for batch in stream.eval_batches(cfg.train.batch_size, max_jets):
        _, latent, _ = fns.predict(batch["features"], batch["mask"])
        parts.append(latent.numpy()[batch["valid"] > 0])
    return np.concatenate(parts) if parts else np.zeros((0, cfg.model.latent_dim), np.float32)


def _init_centroids(cfg: Config, ctx: _Ctx, model, fns: StepFunctions, train: JetStream) -> None:
    """k-means on a sample of training latents (never the whole dataset in one process) -> centroids."""
    import tensorflow as tf

    from ucluster.model import set_centroids

    local = _latents(cfg, fns, train, math.ceil(cfg.train.kmeans_sample / ctx.size))
    sample = ctx.hvd.allgather(tf.constant(local)).numpy() if ctx.size > 1 else local
    if ctx.rank == 0:
        centers = fit_centroids(cfg, sample)
    else:
        centers = np.zeros((cfg.model.n_clusters, sample.shape[1]), np.float32)
    if ctx.size > 1:
        centers = ctx.hvd.broadcast(tf.constant(centers), root_rank=0).numpy()
    set_centroids(model, centers)


def _gather_eval_sample(cfg: Config, ctx: _Ctx, fns: StepFunctions, test: JetStream, max_jets: int = 50000) -> dict:
    """Per-jet test predictions for the plots, bounded in size, gathered on rank 0."""
    parts: dict[str, list] = {"cluster": [], "label": [], "mass": [], "pt": []}
    for batch in test.eval_batches(cfg.train.batch_size, math.ceil(max_jets / ctx.size)):
        _, _, dist = fns.predict(batch["features"], batch["mask"])
        v = batch["valid"] > 0
        parts["cluster"].append(dist.numpy().argmin(-1)[v])
        for key in ("label", "mass", "pt"):
            parts[key].append(batch[key][v])
    local = {k: np.concatenate(v) if v else np.zeros(0, np.float32 if k in ("mass", "pt") else np.int64)
             for k, v in parts.items()}  # a worker's test shard may be empty on tiny datasets
    if ctx.size == 1:
        return local
    gathered = ctx.hvd.allgather_object(local)
    return {k: np.concatenate([g[k] for g in gathered]) for k in local}


class _Tracker:
    """Rank 0's MLflow run: params once, metrics per epoch, artifacts at the end."""

    def __init__(self, cfg: Config, meta: S.DatasetMeta, steps: int, size: int, run_id: str | None):
        import mlflow

        from ucluster.tracking import setup_mlflow

        self.cfg = cfg
        self.meta = meta
        setup_mlflow(cfg.run.output_dir, cfg.run.experiment, cfg.run.tracking_uri)
        # A new run may be a child (a tuning trial); a resumed run keeps the tags it was created with.
        tags = {"mlflow.parentRunId": cfg.run.parent_run_id} if cfg.run.parent_run_id and run_id is None else None
        run = mlflow.start_run(run_id=run_id, run_name=cfg.run.run_name or None, tags=tags)
        self.run_id = run.info.run_id
        if run_id is None:
            params = {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in cfg.flat().items()}
            params.update({"n_workers": size, "steps_per_epoch": steps, "global_batch": cfg.train.batch_size * size,
                           "data.n_features": meta.n_features, "data.feature_names": ",".join(meta.feature_names),
                           "data.dataset_particles": meta.n_particles, "model.n_classes": n_classes(cfg)})
            mlflow.log_params(params)
            mlflow.set_tags({"ucluster.phase_schedule": f"pretrain {cfg.train.pretrain_epochs} / "
                             f"total {cfg.train.epochs} epochs", "ucluster.dataset": str(cfg.data.path)})
            mlflow.log_text(cfg.to_yaml(), "config.yaml")

    def log_metrics(self, metrics: dict, step: int) -> None:
        import mlflow

        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)}, step=step)

    def log_epoch(self, epoch: int, metrics: dict) -> None:
        import mlflow

        mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)}, step=epoch)
        parts = [f"epoch {epoch + 1}/{self.cfg.train.epochs}", f"loss {metrics['loss']:.4f}",
                 f"class acc {metrics['test_class_acc']:.3f}"]
        if "test_cluster_acc" in metrics:
            parts += [f"cluster acc {metrics['test_cluster_acc']:.3f}", f"NMI {metrics['test_nmi']:.3f}",
                      f"ARI {metrics['test_ari']:.3f}"]
        parts.append(f"{metrics['jets_per_s']:.0f} jets/s")
        if self.cfg.run.progress:
            print(" | ".join(parts), flush=True)

    def finish(self, model, last: dict, sample: dict) -> dict:
        import tempfile

        import mlflow

        from ucluster.model import get_centroids
        from ucluster.plots import confusion_matrix_plot, per_cluster_histograms

        out_dir = Path(self.cfg.run.output_dir)
        model_path = out_dir / "model.keras"
        tmp_model = out_dir / ".model.tmp.keras"
        model.save(tmp_model)
        os.replace(tmp_model, model_path)
        names = list(self.cfg.data.classes)
        k = self.cfg.model.n_clusters
        table = M.contingency(sample["cluster"], sample["label"], k, len(names))
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            np.save(tmp / "centroids.npy", get_centroids(model))
            confusion_matrix_plot(table, names, tmp / "confusion_matrix.png")
            per_cluster_histograms(sample["mass"], sample["cluster"], sample["label"], names, k,
                                   tmp / "jet_mass_per_cluster.png", bins=np.linspace(0, 300, 61))
            per_cluster_histograms(sample["pt"], sample["cluster"], sample["label"], names, k,
                                   tmp / "jet_pt_per_cluster.png", xlabel="jet pT [GeV]")
            for f in tmp.iterdir():
                mlflow.log_artifact(str(f))
        mlflow.log_artifact(str(model_path), "model")
        purity, efficiency = M.purity_efficiency(table)
        summary = {f"final_{k_}": v for k_, v in last.items()}
        summary.update({f"final_purity_{n}": float(p) for n, p in zip(names, purity, strict=True)})
        summary.update({f"final_efficiency_{n}": float(e) for n, e in zip(names, efficiency, strict=True)})
        mlflow.log_metrics({k_: v for k_, v in summary.items() if np.isfinite(v)})
        mlflow.end_run()
        return {"run_id": self.run_id, "model_path": str(model_path), **last,
                "purity": dict(zip(names, purity.tolist(), strict=True)),
                "efficiency": dict(zip(names, efficiency.tolist(), strict=True))}

    def fail(self) -> None:
        import mlflow

        if mlflow.active_run():
            mlflow.end_run(status="FAILED")


def train(cfg: Config, spark=None) -> dict:
    """Validate on the driver, then run :func:`train_worker` on ``|run.np|`` Horovod workers."""
    from ucluster.distributed import HorovodRunner

    runner = HorovodRunner(np=cfg.run.np, spark=spark)
    runner.check_slots()
    for warning in preflight(cfg, runner.num_workers)["warnings"]:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    Path(cfg.run.output_dir).mkdir(parents=True, exist_ok=True)
    return runner.run(train_worker, config=cfg.to_dict())
