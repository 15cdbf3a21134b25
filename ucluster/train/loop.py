"""The one UCluster training loop, for every engine (Horovod/TensorFlow, JAX on a device, ...).

Phases: input statistics -> classification-only pretraining -> k-means on a sample of latent vectors initialises
the centroids -> end-to-end classification + deep k-means. The loop owns the phases, the lr/alpha schedules, the
evaluation of the test and val splits, the history, the checkpoints and the tracker; an engine
(:mod:`ucluster.train.engine`) supplies only the step, the forward pass, the collectives and device placement.
No framework is imported here.

Every worker reads only its own shard and takes the same number of steps per epoch (an allreduce with unequal
steps hangs); metrics are allreduced counts; rank 0 alone logs, checkpoints and writes.

An engine may drive several devices per worker (``engine.replicas``, the JAX engine's ``run.devices``): each
step then takes ``replicas * train.batch_size`` jets of the worker's shard (``train.batch_size`` per device,
the paper's per-device batch), and the lr is scaled by ``size * replicas``: a device counts as a worker for
the lr, as a data-parallel replica of the same global batch.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ucluster.config import MASS_TARGETS, Config, TrainConfig
from ucluster.data import schema as S
from ucluster.data.loader import JetStream, prefetch
from ucluster.redact import redact_config_dict
from ucluster.train import checkpoint as ckpt
from ucluster.train import metrics as M
from ucluster.train import schedule
from ucluster.train.averaging import TailAverage, assign_trainable, full_weights
from ucluster.train.engine import Engine


def moved_fractions(table: np.ndarray) -> tuple[float, float]:
    """(moved, moved after the best relabelling) from the K x K table of jets by (earlier, current) cluster."""
    from scipy.optimize import linear_sum_assignment

    total = max(float(table.sum()), 1.0)
    rows, cols = linear_sum_assignment(-table)
    return 1.0 - float(np.trace(table)) / total, 1.0 - float(table[rows, cols].sum()) / total


class TrainingError(ValueError):
    """A problem found before or during training, reported as one line."""


# Jets per worker used for the per-feature input statistics (mean/std over their real particles).
STATS_JETS = 50000


def n_classes(cfg: Config) -> int:
    """Outputs of the classification head: the classes, the mass bins, or the cells of the joint grid."""
    if cfg.model.target == "truth":
        return len(cfg.data.classes)
    if cfg.model.target == "none":  # one logit: the focal term is identically 0
        return 1
    if cfg.model.target == "joint_bins":
        return math.prod(cfg.model.target_bins)
    return cfg.model.mass_bins


def target_coordinates(cfg: Config, logits: np.ndarray) -> np.ndarray:
    """The classifier's expected target per jet, (B, D): for bin targets the expected bin index along each
    binned variable divided by its number of bins (in [0, 1]); for ``truth`` the class probabilities."""
    p = class_probabilities(logits)
    if cfg.model.target == "truth":
        return p
    shape = list(cfg.model.target_bins) if cfg.model.target == "joint_bins" else [cfg.model.mass_bins]
    p = p.reshape(-1, *shape)
    coords = []
    for axis, n in enumerate(shape):
        marginal = p.sum(axis=tuple(a + 1 for a in range(len(shape)) if a != axis))
        coords.append(marginal @ ((np.arange(n) + 0.5) / n))
    return np.stack(coords, axis=1).astype(np.float32)


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


def split_metrics(prefix: str, correct: float, total: float, table: np.ndarray, with_clusters: bool) -> dict:
    """``<prefix>_class_acc`` and, once the centroids exist, the clustering figures of the cluster/class table;
    empty for a split with no selected jets."""
    if total == 0:
        return {}
    out = {f"{prefix}_class_acc": correct / total}
    if with_clusters:
        out.update({f"{prefix}_{name}": v for name, v in M.clustering_report(table).items()})
        out[f"{prefix}_min_cluster_fraction"] = float((table.sum(axis=1) / max(table.sum(), 1)).min())
    return out


def fit_centroids(cfg: Config, sample: np.ndarray, coords: np.ndarray | None = None) -> np.ndarray:
    """k-means (k = model.n_clusters, 10 restarts, seeded) -> the initial centroids in the latent space.

    ``coords`` None: k-means on the latent ``sample`` itself. Otherwise k-means on ``coords`` (one row per latent
    vector, :func:`kmeans_coordinates`): standardised per column for ``train.kmeans_space`` target; as they are
    for probs, whose columns share one scale (standardising would blow up bins that are almost never predicted).
    Each centroid is then the mean latent vector of its cluster; should a cluster come out empty, k-means on the
    latent takes over, with a warning.
    """
    from sklearn.cluster import KMeans

    k = cfg.model.n_clusters
    if coords is None:
        km = KMeans(n_clusters=k, n_init=10, random_state=cfg.train.seed).fit(sample)
        return km.cluster_centers_.astype(np.float32)
    scaled = coords
    if cfg.train.kmeans_space == "target":
        std = coords.std(axis=0)
        scaled = (coords - coords.mean(axis=0)) / np.where(std > 1e-9, std, 1.0)
    assign = KMeans(n_clusters=k, n_init=10, random_state=cfg.train.seed).fit_predict(scaled)
    if len(np.unique(assign)) < k:
        warnings.warn(f"k-means on the {cfg.train.kmeans_space} coordinates left a cluster empty "
                      f"({len(np.unique(assign))} of {k}); the centroids come from k-means on the latent", stacklevel=2)
        return fit_centroids(cfg, sample)
    return partition_means(sample, assign, k)


def partition_means(sample: np.ndarray, assign: np.ndarray, k: int, previous: np.ndarray | None = None) -> np.ndarray:
    """The centroids a partition gives: the mean row of ``sample`` in each of the ``k`` parts of ``assign``
    (float32, (k, D)); an empty part keeps ``previous[c]``, and without ``previous`` is an error."""
    means = []
    for c in range(k):
        rows = sample[assign == c]
        if len(rows):
            means.append(rows.mean(axis=0))
        elif previous is not None:
            means.append(previous[c])
        else:
            raise ValueError(f"part {c} of {k} is empty: it has no mean")
    return np.stack(means).astype(np.float32)


def class_probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax over the classifier's outputs (float32)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(axis=-1, keepdims=True)).astype(np.float32)


def kmeans_coordinates(cfg: Config, logits: np.ndarray) -> np.ndarray:
    """What k-means initialises on for ``train.kmeans_space`` target / probs, one row per jet."""
    if cfg.train.kmeans_space == "probs":
        return class_probabilities(logits)
    return target_coordinates(cfg, logits)


def replicas(engine: Engine) -> int:
    """Data-parallel devices inside one worker (1 for engines that drive one)."""
    return int(getattr(engine, "replicas", 1))


def worker_batch(cfg: Config, engine: Engine) -> int:
    """Jets one worker feeds one step: ``train.batch_size`` per device of the worker."""
    return cfg.train.batch_size * replicas(engine)


def steps_per_epoch(cfg: Config, engine: Engine, train: JetStream) -> int:
    """The same number of full batches on every worker: the minimum over the shards (and the caps)."""
    B, size = worker_batch(cfg, engine), engine.size
    local = train.selected_rows() // B
    if cfg.data.max_train_jets:
        local = min(local, cfg.data.max_train_jets // (B * size))
    if cfg.train.steps_per_epoch:
        local = min(local, cfg.train.steps_per_epoch)
    steps = int(min(engine.allgather_object(int(local))))
    if steps < 1:
        raise TrainingError(f"a worker's shard of {cfg.data.path} holds fewer than {B} selected training jets")
    return steps


def _peak_rss_mb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)  # Linux reports KiB


class _Loop:
    """State shared by the phases of one training (one instance per worker)."""

    def __init__(self, cfg: Config, engine: Engine):
        self.cfg, self.engine = cfg, engine
        self.rank, self.size = engine.rank, engine.size
        self.replicas = replicas(engine)  # lr scale and global batch count the devices as workers
        self.meta = S.read_meta(cfg.data.path)
        self.train = JetStream(cfg, "train", self.rank, self.size, self.meta)
        self.test = JetStream(cfg, "test", self.rank, self.size, self.meta)
        self.val = validation_stream(cfg, self.rank, self.size, self.meta)
        # this worker's test-jet clusters at the k-means initialisation and at the last evaluation
        self._init_assigned: np.ndarray | None = None
        self._prev_assigned: np.ndarray | None = None
        # a run resumed past its k-means initialisation no longer has that assignment (it is held in memory only):
        # it then reports no moved-from-init fractions, rather than fractions from the resume point under that name
        self.init_assignment_lost = False
        # train.average_epochs > 1: the clustering-phase model evaluated, selected and saved is a tail average
        self.average = TailAverage(cfg.train.average_epochs) if cfg.train.average_epochs > 1 else None
        # train.cluster_objective self_label: (sorted jet keys, cluster or -1) of every training jet
        self.self_labels: tuple[np.ndarray, np.ndarray] | None = None

    # -- evaluation -------------------------------------------------------------------------------------
    def evaluate(self, stream: JetStream, with_clusters: bool, prefix: str = "test") -> tuple[dict, np.ndarray]:
        """Metrics of one split (``<prefix>_...``) from allreduced counts: classification accuracy and the
        cluster/class table."""
        cfg = self.cfg
        k, c = cfg.model.n_clusters, len(cfg.data.classes)
        table = np.zeros((k, c))
        correct = total = 0.0
        assigned = []
        per_rank = math.ceil(cfg.data.max_eval_jets / self.size) if cfg.data.max_eval_jets else 0
        for batch in prefetch(stream.eval_batches(cfg.train.batch_size, per_rank)):
            logits, _, dist = self.engine.predict(batch["features"], batch["mask"])
            valid = batch["valid"]
            correct += float(((logits.argmax(-1) == batch["target"]) * valid).sum())
            total += float(valid.sum())
            table += M.contingency(dist.argmin(-1), batch["label"], k, c, valid)
            assigned.append(dist.argmin(-1)[valid > 0])
        reduced = self.engine.allreduce_sum(np.concatenate([[correct, total], table.ravel()]))
        table = reduced[2:].reshape(k, c)
        self.assigned = np.concatenate(assigned) if assigned else np.zeros(0, np.int64)
        return split_metrics(prefix, reduced[0], reduced[1], table, with_clusters), table

    def evaluate_all(self, with_clusters: bool, moves: bool = True) -> dict:
        out = self.evaluate(self.test, with_clusters)[0]
        if with_clusters and moves:
            out.update(self._moves(self.assigned))
        if self.val is not None:
            out.update(self.evaluate(self.val, with_clusters, "val")[0])
        return out

    def _moves(self, assigned: np.ndarray) -> dict:
        """Fractions of test jets whose cluster changed since the k-means initialisation and since the previous
        evaluation (``test_moved_*``): whether the deep k-means phase moves the assignment at all; and the same
        after the best one-to-one relabelling of the clusters (``test_moved_*_matched``), which tells clusters
        that only swapped identities (large moved, small matched) from jets that really changed cluster."""
        out = {}
        k = self.cfg.model.n_clusters
        refs = {"from_init": self._init_assigned, "from_prev": self._prev_assigned}
        for name, ref in refs.items():
            if ref is not None and len(ref) == len(assigned):
                table = np.zeros((k, k))
                np.add.at(table, (ref, assigned), 1.0)
                table = self.engine.allreduce_sum(table.ravel()).reshape(k, k)
                out[f"test_moved_{name}"], out[f"test_moved_{name}_matched"] = moved_fractions(table)
        if self._init_assigned is None and not self.init_assignment_lost:
            self._init_assigned = assigned
        self._prev_assigned = assigned
        return out

    def evaluate_epoch(self, model, centroids_ready: bool) -> dict:
        """The figures of the model this epoch hands out. With tail averaging in the clustering phase: those of
        the averaged weights, and the live weights' (which training continues from) as ``live_*``."""
        if not (centroids_ready and self.average is not None):
            return self.evaluate_all(centroids_ready)
        live = {f"live_{k}": v for k, v in self.evaluate_all(True, moves=False).items()}
        self.engine.pull()
        self.average.add(model)
        assign_trainable(model, self.average.mean())
        self.engine.push()
        try:
            out = self.evaluate_all(True)
        finally:
            assign_trainable(model, self.average.latest())
            self.engine.push()
        return {**out, **live, "averaged_epochs": float(len(self.average))}

    def handed_out_weights(self, model) -> list[np.ndarray]:
        """The full weights of the model this epoch hands out (after ``engine.pull``): the live ones, or their
        tail average."""
        if self.average is not None and len(self.average):
            return full_weights(model, self.average.mean())
        return model.get_weights()

    # -- phases -----------------------------------------------------------------------------------------
    def input_statistics(self, model) -> None:
        """Per-feature mean and std over the real particles of (a sample of) the training split, allreduced,
        stored in the model's input-scaling layer: training, assignment and export then standardise alike."""
        from ucluster.model import has_input_scaling, set_input_scaling

        if not has_input_scaling(model):
            return
        n_f = self.meta.n_features
        sums = np.zeros(1 + 2 * n_f)
        for batch in self.train.eval_batches(self.cfg.train.batch_size, math.ceil(STATS_JETS / self.size)):
            real = (batch["mask"] > 0.5) & (batch["valid"][:, None] > 0)
            x = batch["features"][real].astype(np.float64)
            sums += np.concatenate([[len(x)], x.sum(0), (x * x).sum(0)])
        sums = self.engine.allreduce_sum(sums)
        count = max(sums[0], 1.0)
        mean = sums[1:1 + n_f] / count
        std = np.sqrt(np.maximum(sums[1 + n_f:] / count - mean**2, 0.0))
        set_input_scaling(model, mean, np.where(std > 1e-6, std, 1.0))

    def init_centroids(self, model) -> None:
        """k-means on a sample of training latents (never the whole dataset in one process) -> centroids."""
        from ucluster.model import set_centroids

        cfg = self.cfg
        parts, coords = [], []
        for batch in self.train.eval_batches(cfg.train.batch_size, math.ceil(cfg.train.kmeans_sample / self.size)):
            logits, latent, _ = self.engine.predict(batch["features"], batch["mask"])
            valid = batch["valid"] > 0
            parts.append(latent[valid])
            if cfg.train.kmeans_space != "latent":
                coords.append(kmeans_coordinates(cfg, logits[valid]))
        local = np.concatenate(parts) if parts else np.zeros((0, cfg.model.latent_dim), np.float32)
        sample = self.engine.allgather(local)
        space = None
        if cfg.train.kmeans_space != "latent":
            width = kmeans_coordinates(cfg, np.zeros((1, n_classes(cfg)), np.float32)).shape[1]
            space = self.engine.allgather(np.concatenate(coords) if coords else np.zeros((0, width), np.float32))
        self.engine.pull()
        if self.rank == 0:
            set_centroids(model, fit_centroids(cfg, sample, space))
        self.engine.push()

    def label_training_jets(self) -> dict:
        """``train.cluster_objective`` self_label: every training jet's nearest centroid under the current model,
        kept for the ``train.self_label_fraction`` of each cluster's jets nearest it (the margin to the second
        nearest centroid, thresholds over all workers' jets), -1 for the rest; held on every worker as (sorted
        keys, labels). Returns ``self_label_*`` figures: the labelled share, and the labelled jets' cluster
        accuracy against the truth (evaluation only, as for the test split)."""
        cfg = self.cfg
        k, c = cfg.model.n_clusters, len(cfg.data.classes)
        keys, nearest, margin, truth = [], [], [], []
        for batch in prefetch(self.train.eval_batches(cfg.train.batch_size)):
            v = batch["valid"] > 0
            dist = self.engine.predict(batch["features"], batch["mask"])[2][v]
            part = np.sort(dist, axis=-1)
            keys.append(batch["key"][v])
            nearest.append(dist.argmin(-1))
            margin.append(part[:, 1] - part[:, 0] if k > 1 else np.zeros(len(dist)))
            truth.append(batch["label"][v])
        keys, nearest, margin, truth = (
            self.engine.allgather(np.concatenate(x) if x else np.zeros(0, dtype))
            for x, dtype in ((keys, np.int64), (nearest, np.int64), (margin, np.float32), (truth, np.int32)))
        labels = np.full(len(keys), -1, np.int64)
        for cluster in range(k):
            members = np.flatnonzero(nearest == cluster)
            if len(members):
                cut = np.quantile(margin[members], 1.0 - cfg.train.self_label_fraction)
                chosen = members[margin[members] >= cut]
                labels[chosen] = cluster
        order = np.argsort(keys, kind="stable")
        self.self_labels = (keys[order], labels[order])
        known = labels >= 0
        table = M.contingency(labels[known], truth[known], k, c, np.ones(int(known.sum())))
        return {"self_label_fraction": float(known.mean()) if len(known) else 0.0,
                "self_label_cluster_acc": M.clustering_report(table)["cluster_acc"] if known.any() else 0.0}

    def with_self_labels(self, batch: dict) -> dict:
        """The batch with ``cluster_target``: each jet's self label (-1: none, or a jet the labels do not know)."""
        keys, labels = self.self_labels
        idx = np.minimum(np.searchsorted(keys, batch["key"]), max(len(keys) - 1, 0))
        found = (keys[idx] == batch["key"]) if len(keys) else np.zeros(len(batch["key"]), bool)
        return {**batch, "cluster_target": np.where(found, labels[idx], -1).astype(np.int32)}

    def run_epoch(self, model, epoch: int, steps: int, centroids_ready: bool) -> dict:
        from ucluster.progress import progress

        cfg, engine = self.cfg, self.engine
        lr = schedule.learning_rate(cfg.train, epoch, self.size * self.replicas)
        alpha = schedule.alpha(cfg.train, epoch)
        beta = cfg.train.beta if schedule.is_clustering(cfg.train, epoch) else 0.0
        engine.set_lr(lr)
        sums = None
        bar = progress(steps, f"epoch {epoch + 1}/{cfg.train.epochs}", enabled=self.rank == 0 and cfg.run.progress)
        t0 = time.perf_counter()
        B = worker_batch(cfg, engine)
        put = getattr(engine, "put", None)  # to the device in the prefetch thread, overlapping the step
        batches = self.train.batches(B, steps, epoch, cfg.train.seed)
        if self.self_labels is not None and beta:
            batches = map(self.with_self_labels, batches)
        for batch in prefetch(map(put, batches) if put else batches):
            out = engine.step(batch, alpha, beta)
            sums = out if sums is None else sums + out  # stays on the device until the epoch ends
            bar.update(1)
        sums = np.asarray(sums, dtype=np.float64)
        seconds = time.perf_counter() - t0
        bar.close()
        sums = engine.allreduce_sum(sums)
        n_steps = steps * self.size
        if not np.isfinite(sums[0]):
            raise TrainingError(f"epoch {epoch + 1}: the loss is not finite ({sums[0] / n_steps})")
        jets = n_steps * B
        metrics = {"loss": sums[0] / n_steps, "focal_loss": sums[1] / n_steps, "cluster_loss": sums[2] / n_steps,
                   "train_class_acc": sums[3] / jets, "lr": lr, "alpha": alpha,
                   "jets_per_s": jets / max(seconds, 1e-9), "epoch_seconds": seconds}
        metrics.update(self.evaluate_epoch(model, centroids_ready))
        metrics["worker_peak_rss_mb"] = max(engine.allgather_object(_peak_rss_mb()))
        return {k: float(v) for k, v in metrics.items()}

    def eval_sample(self, max_jets: int = 50000) -> dict:
        """Per-jet test predictions for the plots, bounded in size, gathered on every rank."""
        parts: dict[str, list] = {"cluster": [], "label": [], "mass": [], "pt": []}
        for batch in self.test.eval_batches(self.cfg.train.batch_size, math.ceil(max_jets / self.size)):
            dist = self.engine.predict(batch["features"], batch["mask"])[2]
            v = batch["valid"] > 0
            parts["cluster"].append(dist.argmin(-1)[v])
            for key in ("label", "mass", "pt"):
                parts[key].append(batch[key][v])
        local = {k: np.concatenate(v) if v else np.zeros(0, np.float32 if k in ("mass", "pt") else np.int64)
                 for k, v in parts.items()}  # a worker's test shard may be empty on tiny datasets
        gathered = self.engine.allgather_object(local)
        return {k: np.concatenate([g[k] for g in gathered]) for k in local}


def make_optimizer(t: TrainConfig, scale: int):
    """Adam at the epoch-0 lr of the schedule (``scale`` = data-parallel replicas), with the global gradient norm
    clipped to ``train.clip_norm`` when set; every engine applies it through ``optimizer.apply``."""
    import keras

    return keras.optimizers.Adam(learning_rate=schedule.learning_rate(t, 0, scale),
                                 global_clipnorm=t.clip_norm or None)


def run(cfg: Config, engine: Engine, track: bool = True,
        on_epoch: Callable[[int, dict], None] | None = None, run_id: str | None = None,
        heartbeat: Callable[[int], None] | None = None, restart: dict | None = None) -> dict:
    """Train on this worker with ``engine``; every worker calls it. Returns the final figures:
    ``{"history": [per-epoch metrics], test_*/val_* of the last epoch, init_* (the k-means initialisation
    scored before any deep k-means step), "last4_mean_test_cluster_acc", "purity", "efficiency", "model_path",
    and "run_id" when tracked}``. ``track``: rank 0 logs to MLflow; ``on_epoch(epoch, metrics)`` runs on rank 0
    after every epoch. ``run_id``: the MLflow run to log into (created by the driver, which outlives the
    workers and closes it whatever happens to them); ``heartbeat(epoch)`` runs on every rank at each epoch start
    (the worker's status file); ``restart`` ({"attempt", "failure_time"}) marks a relaunch after a failure.
    """
    import keras

    from ucluster.model import build_model, get_centroids, ordinal_kernel

    loop = _Loop(cfg, engine)
    rank, size = loop.rank, loop.size
    steps = steps_per_epoch(cfg, engine, loop.train)

    keras.utils.set_random_seed(cfg.train.seed)  # identical initial weights everywhere (then pushed anyway)
    model = build_model(cfg.model, cfg.data.max_particles, loop.meta.n_features, n_classes(cfg))
    keras.utils.set_random_seed(cfg.train.seed + 7919 * rank)  # dropout differs between workers
    optimizer = make_optimizer(cfg.train, size * replicas(engine))
    optimizer.build(model.trainable_variables)
    kernel = None
    if cfg.model.target in MASS_TARGETS and cfg.model.bin_smoothing > 0:
        kernel = ordinal_kernel(cfg.model.mass_bins, cfg.model.bin_smoothing)

    state = {"epoch": -1, "run_id": None, "centroids_ready": False, "finished": False, "history": []}
    if cfg.run.resume:
        window = None
        if rank == 0:
            state = {"history": [], **ckpt.restore_checkpoint(cfg.run.output_dir, model, optimizer)}
            window = ckpt.read_average_window(cfg.run.output_dir) if loop.average is not None else None
        state = engine.broadcast_object(state)
        loop.init_assignment_lost = bool(state.get("centroids_ready"))  # the same on every rank (broadcast)
        if loop.average is not None:  # every rank holds the same copies, so every rank takes the same branches
            loop.average.restore(engine.broadcast_object(window))
        if cfg.train.cluster_objective == "self_label" and state.get("centroids_ready"):
            labels = ckpt.read_self_labels(cfg.run.output_dir) if rank == 0 else None
            loop.self_labels = engine.broadcast_object(labels)
        if state.get("devices", 1) != replicas(engine):  # the global batch and the lr depend on it
            raise TrainingError(f"--resume: the checkpoint was written on {state.get('devices', 1)} device(s) per "
                                f"worker, this run has {replicas(engine)} (set run.devices to match)")
    else:
        loop.input_statistics(model)
    engine.setup(model, optimizer, cfg.train.gamma, kernel, cfg.train.balance)

    tracker = None
    if rank == 0 and track:
        from ucluster.train.tracker import MLflowTracker

        params = {"n_workers": size, "engine": engine.name, "steps_per_epoch": steps, "devices": replicas(engine),
                  "global_batch": worker_batch(cfg, engine) * size, "model.n_classes": n_classes(cfg)}
        tracker = MLflowTracker(cfg, loop.meta, params, state.get("run_id") or run_id)
        if restart:  # failure detected on the driver -> relaunched, restored and ready to train again
            tracker.log_metrics({"restart_recovery_seconds": time.time() - restart["failure_time"]},
                                restart["attempt"])
    history: list[dict] = state["history"]
    last: dict = {}
    # train.select = best_val: every rank tracks the best val score (allreduced, so they agree); rank 0 alone
    # keeps those weights, in memory and in a file beside the checkpoint (a resumed run still knows them).
    best = state.get("best") or {"val": -1.0, "epoch": -1, "metrics": None}
    best_weights = ckpt.read_best_weights(cfg.run.output_dir) if rank == 0 and best["metrics"] else None
    identity = {"config_hash": ckpt.config_hash(cfg.flat()), "config": redact_config_dict(cfg.to_dict()),
                "dataset": {"path": str(cfg.data.path), "fingerprint": ckpt.dataset_fingerprint(cfg.data.path)},
                "rng": {"seed": cfg.train.seed, "shuffle": "numpy default_rng([train.seed, epoch, rank])",
                        "dropout": "Keras seed-generator states, saved with the model variables"}}
    try:
        for epoch in range(state["epoch"] + 1, cfg.train.epochs):
            if heartbeat:
                heartbeat(epoch)
            if schedule.is_clustering(cfg.train, epoch) and not state["centroids_ready"]:
                loop.init_centroids(model)
                state["centroids_ready"] = True
                # The k-means initialisation scored before any deep k-means step: what the end-to-end phase adds
                # (or loses) is the difference to the final figures.
                init = loop.evaluate_all(True)
                state["init_metrics"] = {f"init_{k}": float(v) for k, v in init.items() if "class_acc" not in k}
                if tracker:
                    tracker.log_metrics(state["init_metrics"], epoch)
            labelled = {}
            if cfg.train.cluster_objective == "self_label" and state["centroids_ready"] and _relabel_due(
                    cfg.train, epoch, loop.self_labels is None):
                labelled = loop.label_training_jets()
            last = {**loop.run_epoch(model, epoch, steps, state["centroids_ready"]), **labelled}
            history.append({"epoch": epoch, **last})
            if cfg.train.select == "best_val" and last.get("val_cluster_acc", -1.0) > best["val"]:
                best = {"val": last["val_cluster_acc"], "epoch": epoch, "metrics": dict(last)}
                if rank == 0:
                    engine.pull()
                    best_weights = loop.handed_out_weights(model)  # saved in the next checkpoint: they agree
            state["best"] = best
            state.update(epoch=epoch, run_id=tracker.run_id if tracker else state["run_id"],
                         n_workers=size, devices=replicas(engine), engine=engine.name, finished=False,
                         history=history, **identity)
            if rank == 0:
                if tracker:
                    tracker.log_epoch(epoch, last)
                if on_epoch:
                    on_epoch(epoch, last)
                engine.pull()
                ckpt.save_checkpoint(cfg.run.output_dir, model, optimizer, state, best_weights, window_copies(loop),
                                     loop.self_labels)
        if not state["centroids_ready"] or not last:
            # No clustering epoch ran (pretraining only, or a resume of a completed schedule): the k-means
            # initialisation is the clustering result.
            if not state["centroids_ready"]:
                loop.init_centroids(model)
                state["centroids_ready"] = True
            last = {**last, **loop.evaluate_all(True)}
        engine.pull()
        # the weights training ended on: the finished checkpoint keeps them, so that a resume with more epochs
        # continues from where training stopped, not from the model handed out (selected or averaged)
        live_weights = model.get_weights() if rank == 0 else None
        if best["metrics"] is not None:  # the clustering epoch that scored best on val, not the last one
            if rank == 0:
                model.set_weights(best_weights)
            engine.push()
            last = {**best["metrics"], "selected_epoch": float(best["epoch"])}
        elif loop.average is not None and len(loop.average):  # select last: the tail average of the last epochs
            assign_trainable(model, loop.average.mean())
            engine.push()
        sample = loop.eval_sample()
        engine.pull()
        final = _final_figures(cfg, last, state, history, sample)
        if rank != 0:
            return {"rank": rank, **final}
        state.update(finished=True, **identity)
        handed_out = model.get_weights()
        model.set_weights(live_weights)
        ckpt.save_checkpoint(cfg.run.output_dir, model, optimizer, state, best_weights, window_copies(loop),
                             loop.self_labels)
        model.set_weights(handed_out)
        final["model_path"] = str(_save_model(model, cfg.run.output_dir))
        if tracker:
            try:
                final.update(tracker.finish(Path(final["model_path"]), get_centroids(model), final, sample))
            except Exception:
                if _tracking_reachable():
                    raise
                # The store went down: the model is saved; the end of the run waits in the local fallback.
                tracker.fallback.pending_finish(final, final["model_path"])
                final["run_id"] = tracker.run_id
        return {**final, "history": history}
    except BaseException:
        if tracker:
            tracker.fail()
        raise


def _relabel_due(t: TrainConfig, epoch: int, unlabelled: bool) -> bool:
    """Whether a self_label clustering epoch starts by labelling the training jets: the first one (no labels
    yet; a resumed run has its checkpoint's), then every ``train.self_label_every`` clustering epochs when set."""
    done = epoch - t.pretrain_epochs
    return unlabelled or (t.self_label_every > 0 and done > 0 and done % t.self_label_every == 0)


def window_copies(loop: _Loop) -> list[list[np.ndarray]] | None:
    """The tail-averaging copies a checkpoint stores (None without tail averaging)."""
    return loop.average.copies() if loop.average is not None else None


def _tracking_reachable() -> bool:
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient().search_experiments(max_results=1)
        return True
    except Exception:  # noqa: BLE001
        return False


def _final_figures(cfg: Config, last: dict, state: dict, history: list[dict], sample: dict) -> dict:
    names = list(cfg.data.classes)
    table = M.contingency(sample["cluster"], sample["label"], cfg.model.n_clusters, len(names))
    purity, efficiency = M.purity_efficiency(table)
    clustered = [h["test_cluster_acc"] for h in history if "test_cluster_acc" in h]
    # One epoch's figure moves by several points; the mean of the last four is the steadier summary.
    return {**state.get("init_metrics", {}), **last,
            "last4_mean_test_cluster_acc": float(np.mean(clustered[-4:])) if clustered else math.nan,
            "purity": dict(zip(names, purity.tolist(), strict=True)),
            "efficiency": dict(zip(names, efficiency.tolist(), strict=True))}


def _save_model(model, output_dir: str) -> Path:
    import os

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path, tmp = out / "model.keras", out / ".model.tmp.keras"
    model.save(tmp)
    os.replace(tmp, path)
    return path
