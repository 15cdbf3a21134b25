"""Typed configuration: YAML in conf/ -> dataclasses -> code; every field can be overridden from the CLI.

Configuration flows one way. A YAML file is read into :class:`Config`; unknown keys and values of the wrong
type are rejected with a one-line error that names the file and the field (with a suggestion for typos);
command-line flags ``--section.field value`` override single fields; the resolved config is what gets logged.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TARGETS = ("mass_bins", "mass_sd_bins", "mass_hybrid_bins", "joint_bins", "truth", "none")
MASS_TARGETS = ("mass_bins", "mass_sd_bins", "mass_hybrid_bins")  # one mass binned: mass_bins, spacing, smoothing
MASS_BIN_SPACINGS = ("linear", "log")
# jet variables a joint_bins target can bin: the jet mass, the soft-drop mass (both over [data.mass_min,
# data.mass_max]) and the N-subjettiness ratios (over [0, 1])
TARGET_VARS = ("mass", "mass_sd", "tau21", "tau32", "m_j1", "m_j2", "tau21_j1", "tau21_j2")
LEVELS = ("jet", "event")
KMEANS_SPACES = ("latent", "target", "probs")
CLUSTER_OBJECTIVES = ("kmeans", "self_label")
RUN_ENGINES = ("horovod", "tf_distribute", "auto", "jax")
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "conf" / "ucluster.yaml"


class ConfigError(ValueError):
    """A configuration problem, reported as one line naming the source and the field."""


@dataclass
class DataConfig:
    """Which jets are read and how they are streamed to each worker."""

    path: str = ""  # Parquet dataset written by the converter
    # "jet": one jet per row (the W/Z/t task); "event": one event per row (anomaly mode, conversion/lhco_events.py):
    # jet_mass is then m_jj, so mass_min/mass_max are the m_jj window, and classes are background/signal
    level: str = "jet"
    classes: list[str] = field(default_factory=lambda: ["w", "z", "t"])  # truth classes kept
    mass_min: float = 10.0  # jet selection window in GeV (UCluster used 10-200; see docs)
    mass_max: float = 250.0
    pt_min: float = 0.0
    pt_max: float = 1.0e9
    max_particles: int = 100  # leading particles used (<= the dataset's P)
    shuffle_buffer: int = 65536  # jets in each worker's streaming shuffle buffer: must span many row groups (conf/)
    reader_threads: int = 2  # row groups read and decoded in parallel by each worker
    # keep each worker's decoded shard in memory after its first epoch (~ jets x max_particles x features x 4
    # bytes): later epochs skip Parquet reading and decoding; same batches, same shuffling
    cache: bool = False
    max_train_jets: int = 0  # 0 = all; caps the jets each epoch reads (global, split across workers)
    max_eval_jets: int = 0  # 0 = all; caps the val and test jets evaluated (about: ceil(cap / workers) per worker)
    # [mass_min, mass_max, pt_min, pt_max] of the jets evaluated (test and val splits); empty = the training
    # selection above. jobs/tune.py pins it to the base config's, so trials that change the training selection
    # are still all scored on the same jets.
    eval_window: list[float] = field(default_factory=list)


@dataclass
class ModelConfig:
    """ABCnet backbone, heads and the clustering layer."""

    k: int = 20  # neighbours of the k-NN graphs
    gap1_channels: int = 16  # first graph-attention block (1 head)
    gap2_channels: int = 32  # second graph-attention block (per head)
    gap2_heads: int = 4
    point_channels: list[int] = field(default_factory=lambda: [64, 128])  # 1x1 convolutions
    latent_dim: int = 256  # per-jet latent space used for clustering
    standardize: bool = True  # per-feature (x - mean) / std of the inputs, statistics from the training split
    pooling: str = "max_mean"  # jet latent from "max" or "max_mean" (max and mean over particles, projected)
    head_units: list[int] = field(default_factory=lambda: [128, 64])
    dropout: float = 0.1
    attention_dropout: float = 0.0
    n_clusters: int = 3
    latent_norm: str = "l2"  # "l2": cluster on the unit-normalised latent (prevents scale collapse); "none"
    # the centroids' Adam step relative to the network's (1 = the same lr; conf/ucluster.yaml says what was measured)
    centroid_step_scale: float = 0.05
    # classification (pretraining) target: "mass_bins" / "mass_sd_bins" (bins of the jet / soft-drop groomed
    # mass), "joint_bins" (a grid of several jet variables), "none" (no classification: the self-supervised term
    # alone; needs ssl_weight > 0), all unsupervised; or "truth" (the labels: the supervised ceiling)
    # "mass_hybrid_bins": bins of m_SD where soft drop keeps at least hybrid_sd_fraction of the jet mass (both
    # prongs kept: the sharp W/Z/t peaks), else of the ungroomed m (its lower edge sits at the boson mass)
    # (the default: on the GPU 0.771 against 0.726 for mass_bins, docs/clustering-quality.md round 16; fraction 0.6
    # and, after its confirmation on fresh seeds, 80 bins since round 19)
    target: str = "mass_hybrid_bins"
    mass_bins: int = 80  # jet-mass bins over [data.mass_min, data.mass_max] (the three mass targets)
    # "linear": equal width in GeV (the paper's); "log": equal width in log m (the mass targets; joint_bins grids
    # stay linear)
    mass_bin_spacing: str = "log"
    hybrid_sd_fraction: float = 0.6  # mass_hybrid_bins: m_SD / m at or above which the groomed mass is used
    bin_smoothing: float = 0.0  # Gaussian width (in bins) of the mass-bin targets; 0 = one-hot (the paper's)
    # target "joint_bins": one class per cell of the equal-width grid target_vars x target_bins (no labels)
    target_vars: list[str] = field(default_factory=lambda: ["mass_sd", "tau21"])
    target_bins: list[int] = field(default_factory=lambda: [10, 4])
    # upper edge of the bins of the per-jet masses m_j1/m_j2 of event-level targets (lower edge 0), GeV
    target_jet_mass_max: float = 500.0
    # self-supervised term (SwAV-style swapped prediction between two augmented views of each jet, codes from
    # Sinkhorn equipartition): its weight (0 = off; target "none" + a weight = self-supervised pretraining only)
    ssl_weight: float = 0.0
    ssl_prototypes: int = 32  # prototypes the views are coded on
    ssl_temperature: float = 0.1  # softmax temperature of the predicted codes
    ssl_shift: float = 0.05  # std of the random (deta, dphi) shift of a view's jet axis
    ssl_drop: float = 0.1  # fraction of the particles (all but the leading one) a view drops
    # "swav": swapped prediction of Sinkhorn codes; "dino": self-distillation from a momentum teacher (DINO, jBOT)
    ssl_method: str = "swav"
    ssl_teacher_temperature: float = 0.04  # dino: sharpening of the teacher's codes
    ssl_teacher_momentum: float = 0.996  # dino: the teacher's weights follow the student's EMA with this momentum
    ssl_center_momentum: float = 0.9  # dino: momentum of the running centre of the teacher's scores


@dataclass
class TrainConfig:
    """Optimisation schedule (defaults: the distributed UCluster paper, Table 2)."""

    batch_size: int = 1024  # per worker
    pretrain_epochs: int = 20  # classification only
    epochs: int = 50  # total, pretraining included (conf/ucluster.yaml says why not the paper's 100)
    lr: float = 1.0e-3  # per worker; multiplied by the number of workers when scale_lr is on
    scale_lr: bool = True
    lr_decay_every: int = 3  # epochs
    lr_decay_factor: float = 1.0  # 1 = constant (conf/ucluster.yaml says why not the paper's 0.5)
    lr_min: float = 1.0e-5
    lr_restart: bool = False  # restart the lr schedule when the clustering phase starts
    cluster_lr_factor: float = 1.0  # lr multiplier in the clustering phase (conf/ucluster.yaml says what was measured)
    alpha_start: float = 10.0  # sharpness of the cluster assignment in the first clustering epoch (conf/ucluster.yaml)
    alpha_step: float = 2.0  # added to alpha every clustering epoch
    beta: float = 10.0  # weight of the clustering loss (the paper's; conf/ucluster.yaml says what was measured)
    gamma: float = 2.0  # focal-loss focusing parameter
    # weight of the cluster-size balance term (KL of the batch's mean soft assignment from uniform) inside the
    # clustering loss: 0 = plain deep k-means (conf/ucluster.yaml says why 0.1)
    balance: float = 0.1
    clip_norm: float = 0.0  # clip the global gradient norm to this before each step (0 = no clipping)
    kmeans_sample: int = 20000  # latent vectors (all workers together) used to initialise the centroids
    seed: int = 42
    steps_per_epoch: int = 0  # 0 = as many full batches as the smallest shard allows
    select: str = "best_val"  # final model: "last" epoch, or "best_val" (the clustering epoch best on the val split)
    # where k-means finds the initial clusters: "latent" (the latent vectors themselves), "target" (the
    # classifier's expected target coordinates), or "probs" (the classifier's output probabilities, as they are).
    # With target or probs the centroids are the mean latent of each cluster. The default is probs: with the
    # hybrid-mass bins the latent holds a split by soft-drop outcome that k-means follows (round 16), and on the
    # one-number expected bin two k-means solutions of near-equal inertia compete, one of them poor (round 17).
    kmeans_space: str = "probs"
    # the clustering term: "kmeans" (deep k-means, the paper's) or "self_label" (cross entropy of the soft
    # assignment against the partition the centroids' initialisation gave, on the self_label_fraction of each
    # cluster's training jets nearest their centroid: an objective whose optimum is that partition, where deep
    # k-means drifts to the latent's own k-means optimum, docs/clustering-quality.md round 18)
    cluster_objective: str = "kmeans"
    self_label_fraction: float = 0.5  # self_label: most confident share of each cluster's jets that carry a label
    self_label_every: int = 0  # self_label: relabel from the current model every N clustering epochs (0 = never)
    # clustering epochs whose end-of-epoch trainable weights are averaged into the model that is evaluated,
    # selected and saved (1 = the live weights; with select best_val, the epochs ending at the selected one; the
    # copies travel in the checkpoint). Training itself always continues from the live weights.
    average_epochs: int = 1


@dataclass
class RunConfig:
    """Where results go and how many workers train."""

    output_dir: str = "runs/train"
    experiment: str = "ucluster"
    run_name: str = ""
    parent_run_id: str = ""  # MLflow run this run is nested under (set by jobs/tune.py for its trials)
    tracking_uri: str = ""  # empty: $MLFLOW_TRACKING_URI, else sqlite under output_dir
    np: int = -1  # HorovodRunner meaning: < 0 local processes, > 0 Spark tasks
    # "horovod" (TensorFlow + Horovod, CPU workers), "tf_distribute" (TensorFlow MultiWorkerMirroredStrategy in
    # Spark barrier tasks / local processes: no Horovod needed), "auto" (Horovod if importable, else
    # tf_distribute) or "jax" (local devices, KERAS_BACKEND=jax)
    engine: str = "horovod"
    # engine jax: local devices trained on data-parallel (0 = all); each gets train.batch_size jets of every step
    # and the lr is scaled by their count like workers (train.scale_lr)
    devices: int = 0
    resume: bool = False
    progress: bool = True
    deterministic: bool = False  # TensorFlow deterministic ops (bit-reproducible resumes; a little slower)
    threads_per_worker: int = 0  # TensorFlow intra-op threads per worker; 0 = this host's cores / local workers
    registered_model: str = "ucluster"  # registry name the final model gets a version of; empty: log, don't register
    source: str = ""  # what launched the run (MLflow's Source): filled in by train() when empty
    source_commit: str = ""  # git commit of that code: filled in by train() when empty and known
    max_restarts: int = 2  # a lost worker or failed allreduce relaunches the workers from the last checkpoint


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """``{"train.lr": 0.001, ...}``: the form logged as MLflow parameters."""
        return {f"{s}.{k}": v for s, sec in self.to_dict().items() for k, v in sec.items()}

    def to_yaml(self, redacted: bool = False) -> str:
        """The config as YAML; ``redacted`` masks the credentials of ``run.tracking_uri``, for every copy that is a
        record (a console, a logged config.yaml, best.yaml) rather than what a training reads."""
        if not redacted:
            return yaml.safe_dump(self.to_dict(), sort_keys=False)
        from ucluster.redact import redact_config_dict

        return yaml.safe_dump(redact_config_dict(self.to_dict()), sort_keys=False)


def _sections() -> dict[str, type]:
    return {f.name: f.type if isinstance(f.type, type) else globals()[f.type] for f in dataclasses.fields(Config)}


def _field_types(section_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(section_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(section_cls)}


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Convert a YAML or command-line value to the field's declared type, or fail naming the field."""
    origin = typing.get_origin(typ)
    try:
        if origin in (list, types.GenericAlias) or typ is list or origin is list:
            (item,) = typing.get_args(typ) or (str,)
            if isinstance(value, str):
                value = [v for v in (s.strip() for s in value.split(",")) if v]
            if not isinstance(value, list | tuple):
                raise TypeError
            return [_coerce(v, item, where) for v in value]
        if typ is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in {"1", "true", "yes", "on"}:
                return True
            if isinstance(value, str) and value.lower() in {"0", "false", "no", "off"}:
                return False
            raise TypeError
        if typ is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if typ is float:
            if isinstance(value, bool):
                raise TypeError
            return float(value)
        if typ is str:
            if isinstance(value, dict | list):
                raise TypeError
            return str(value)
    except (TypeError, ValueError):
        pass
    else:
        return value
    name = getattr(typ, "__name__", str(typ))
    raise ConfigError(f"{where}: expected {name}, got {value!r}")


def field_type(section: str, key: str, source: str) -> Any:
    """The declared type of ``section.key``, or a one-line error naming ``source`` (with a suggestion)."""
    sections = _sections()
    if section not in sections:
        raise ConfigError(f"{source}: unknown section '{section}'{_suggest(section, list(sections))}")
    types_ = _field_types(sections[section])
    if key not in types_:
        raise ConfigError(f"{source}: unknown field '{section}.{key}'{_suggest(key, list(types_))}")
    return types_[key]


def _apply(cfg: Config, section: str, key: str, value: Any, source: str) -> None:
    typ = field_type(section, key, source)
    setattr(getattr(cfg, section), key, _coerce(value, typ, f"{source}: field '{section}.{key}'"))


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read ``path`` (default: conf/ucluster.yaml) and apply ``{"section.field": value}`` overrides."""
    cfg = Config()
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    for section, values in raw.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: section '{section}' must be a mapping")
        for key, value in values.items():
            _apply(cfg, section, key, value, str(path))
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        _apply(cfg, section, key, value, f"--{dotted}")
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Cross-field checks that no single type can express."""
    d, m, t = cfg.data, cfg.model, cfg.train
    checks = [
        (d.mass_min < d.mass_max, "data.mass_min must be below data.mass_max"),
        (d.pt_min < d.pt_max, "data.pt_min must be below data.pt_max"),
        (not d.eval_window or (len(d.eval_window) == 4 and d.eval_window[0] < d.eval_window[1]
                               and d.eval_window[2] < d.eval_window[3]),
         "data.eval_window must be empty or [mass_min, mass_max, pt_min, pt_max] with min < max"),
        (len(d.classes) >= 1, "data.classes must name at least one class"),
        (d.level in LEVELS, f"data.level must be one of {', '.join(LEVELS)}, got '{d.level}'"),
        (m.target_jet_mass_max > 0, "model.target_jet_mass_max must be positive"),
        (d.max_particles >= 2, "data.max_particles must be at least 2"),
        (d.shuffle_buffer >= 1, "data.shuffle_buffer must be positive"),
        (m.k >= 1, "model.k must be positive"),
        (m.n_clusters >= 2, "model.n_clusters must be at least 2"),
        (m.target in TARGETS, f"model.target must be one of {', '.join(TARGETS)}, got '{m.target}'"),
        (m.mass_bins >= 2, "model.mass_bins must be at least 2"),
        (m.mass_bin_spacing in MASS_BIN_SPACINGS,
         f"model.mass_bin_spacing must be one of {', '.join(MASS_BIN_SPACINGS)}, got '{m.mass_bin_spacing}'"),
        (m.mass_bin_spacing != "log" or m.target not in MASS_TARGETS or d.mass_min > 0,
         f"model.mass_bin_spacing log needs data.mass_min > 0, got {d.mass_min} (or set model.mass_bin_spacing "
         "linear)"),
        (0 < m.hybrid_sd_fraction <= 1, f"model.hybrid_sd_fraction must be in (0, 1], got {m.hybrid_sd_fraction}"),
        (m.ssl_weight >= 0, f"model.ssl_weight must be >= 0, got {m.ssl_weight}"),
        (m.target != "none" or m.ssl_weight > 0,
         "model.target none trains nothing without the self-supervised term: set model.ssl_weight > 0"),
        (m.ssl_prototypes >= 2 and m.ssl_temperature > 0 and m.ssl_shift >= 0 and 0 <= m.ssl_drop < 1,
         "model.ssl_prototypes must be >= 2, ssl_temperature > 0, ssl_shift >= 0 and ssl_drop in [0, 1)"),
        (m.ssl_method in ("swav", "dino"), f"model.ssl_method must be swav or dino, got '{m.ssl_method}'"),
        (m.ssl_teacher_temperature > 0 and 0 <= m.ssl_teacher_momentum < 1 and 0 <= m.ssl_center_momentum < 1,
         "model.ssl_teacher_temperature must be > 0, ssl_teacher_momentum and ssl_center_momentum in [0, 1)"),
        (m.bin_smoothing >= 0, "model.bin_smoothing must be >= 0"),
        (len(m.target_vars) >= 1 and len(m.target_vars) == len(m.target_bins),
         "model.target_vars and model.target_bins must have the same, non-zero length"),
        (all(v in TARGET_VARS for v in m.target_vars),
         f"model.target_vars must be among {', '.join(TARGET_VARS)}, got {m.target_vars}"),
        (all(b >= 1 for b in m.target_bins) and math.prod(m.target_bins) >= 2,
         "model.target_bins must be positive with at least 2 cells in all"),
        (m.pooling in ("max", "max_mean"), f"model.pooling must be 'max' or 'max_mean', got '{m.pooling}'"),
        (m.latent_norm in ("none", "l2"), f"model.latent_norm must be 'none' or 'l2', got '{m.latent_norm}'"),
        (0.0 <= m.dropout < 1.0 and 0.0 <= m.attention_dropout < 1.0, "model dropouts must be in [0, 1)"),
        (t.batch_size >= 1, "train.batch_size must be positive"),
        (t.balance >= 0, f"train.balance must be >= 0, got {t.balance}"),
        (0 < m.centroid_step_scale <= 1, f"model.centroid_step_scale must be in (0, 1], got {m.centroid_step_scale}"),
        (t.clip_norm >= 0, f"train.clip_norm must be >= 0 (0 = no clipping), got {t.clip_norm}"),
        (t.kmeans_space in KMEANS_SPACES,
         f"train.kmeans_space must be one of {', '.join(KMEANS_SPACES)}, got '{t.kmeans_space}'"),
        (t.kmeans_space == "latent" or m.target != "none",
         f"train.kmeans_space {t.kmeans_space} needs a classification target (model.target none has none): "
         "set train.kmeans_space latent"),
        (t.cluster_objective in CLUSTER_OBJECTIVES,
         f"train.cluster_objective must be one of {', '.join(CLUSTER_OBJECTIVES)}, got '{t.cluster_objective}'"),
        (0 < t.self_label_fraction <= 1, f"train.self_label_fraction must be in (0, 1], got {t.self_label_fraction}"),
        (t.self_label_every >= 0, f"train.self_label_every must be >= 0 (0 = never relabel), got {t.self_label_every}"),
        (t.select in ("last", "best_val"), f"train.select must be 'last' or 'best_val', got '{t.select}'"),
        (t.average_epochs >= 1, f"train.average_epochs must be >= 1 (1 = no averaging), got {t.average_epochs}"),
        (0 <= t.pretrain_epochs <= t.epochs, "train.pretrain_epochs must be between 0 and train.epochs"),
        (t.lr > 0 and t.lr_min > 0, "train.lr and train.lr_min must be positive"),
        (t.lr_decay_every >= 1, "train.lr_decay_every must be at least 1"),
        (t.cluster_lr_factor > 0, f"train.cluster_lr_factor must be positive, got {t.cluster_lr_factor}"),
        (t.kmeans_sample >= m.n_clusters, "train.kmeans_sample must be at least model.n_clusters"),
        (cfg.run.max_restarts >= 0, "run.max_restarts must be >= 0"),
        (cfg.run.devices >= 0, f"run.devices must be >= 0 (0 = all local devices), got {cfg.run.devices}"),
        (cfg.run.np != 0, "run.np must be non-zero (< 0: local processes, > 0: Spark tasks)"),
        (cfg.run.engine in RUN_ENGINES,
         f"run.engine must be one of {', '.join(RUN_ENGINES)}, got '{cfg.run.engine}'"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--section.field`` flag per config field (all default to None = keep the YAML value)."""
    group = parser.add_argument_group("config overrides (any field of conf/*.yaml)")
    for section, cls in _sections().items():
        for name, typ in _field_types(cls).items():
            metavar = "A,B,..." if typing.get_origin(typ) is list else getattr(typ, "__name__", "V").upper()
            group.add_argument(f"--{section}.{name}", dest=f"cfg__{section}__{name}", default=None,
                               metavar=metavar, help=argparse.SUPPRESS)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    out = {}
    for key, value in vars(args).items():
        if key.startswith("cfg__") and value is not None:
            _, section, name = key.split("__", 2)
            out[f"{section}.{name}"] = value
    return out


# Fields added after configs were first stored, with the value the code before them used: a stored config without
# them (a checkpoint's or a model's from before) reads back as it trained, not with today's default.
IMPLIED_WHEN_MISSING = {("model", "mass_bin_spacing"): "linear", ("train", "kmeans_space"): "latent"}


def config_from_dict(values: dict[str, dict[str, Any]], source: str = "config") -> Config:
    """Rebuild a :class:`Config` from :meth:`Config.to_dict` output (e.g. in a Horovod worker or a checkpoint)."""
    cfg = Config()
    for section, fields_ in values.items():
        for key, value in fields_.items():
            _apply(cfg, section, key, value, source)
    for (section, key), value in IMPLIED_WHEN_MISSING.items():
        if section in values and key not in values[section]:
            _apply(cfg, section, key, value, source)
    validate(cfg)
    return cfg
