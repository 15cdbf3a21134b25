"""The driver of a hyper-parameter search: owns the Optuna study, farms trial rungs out as Spark tasks.

Loop: ask Optuna for new trials (and take trials promoted to their next rung first) until ``parallel`` work
items fill a batch; run the batch as one Spark job, one task per item (:func:`ucluster.tune.trial.run_trial_task`);
report each trial's per-epoch ``val_cluster_acc`` (validation split) to its Optuna trial; then, per trial,
complete it (last rung), promote it, or prune it (:mod:`ucluster.tune.halving`). Every trial is an MLflow run
nested under one parent run that this driver opens; the best complete trial is written as a full config YAML.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ucluster.atomic import atomic_create, atomic_write_bytes
from ucluster.config import Config, ConfigError, RunConfig, config_from_dict
from ucluster.redact import has_credentials, redact_config_dict
from ucluster.tune.halving import promotable, rung_budgets
from ucluster.tune.space import SearchSpace
from ucluster.tune.trial import OBJECTIVE, REPORTED, run_trial_task

STUDY_NAME = "ucluster-tune"


class TuneError(ValueError):
    """A problem with the search as a whole, reported as one line."""


@dataclass
class TuneOptions:
    out: str = "runs/tune"
    trials: int = 20  # new trials this invocation (a persisted study keeps its earlier ones)
    parallel: int = 0  # trial rungs per Spark job; 0 = the cluster's default parallelism
    rungs: int = 2  # successive-halving rungs; 1 = every trial trains the full budget
    reduction_factor: int = 3  # the top 1/reduction_factor of a rung goes on to the next
    storage: str = ""  # Optuna storage URL; "" = SQLite in <out>/optuna.db; "memory" = in-memory
    study_name: str = STUDY_NAME
    seed: int | None = None  # sampler seed; None = train.seed of the base config
    trial_timeout: int = 0  # seconds per trial rung; 0 = no limit
    write_conf: str = ""  # also copy best.yaml here (never over an existing file unless overwrite)
    overwrite: bool = False


@dataclass
class TuneResult:
    best: dict[str, Any]
    rows: list[dict[str, Any]]
    best_yaml: Path
    parent_run_id: str
    tracking_uri: str
    study: Any = field(repr=False, default=None)


@dataclass
class _Trial:
    """A live trial of this invocation: its config (full budget) and where it stands."""

    trial: Any
    cfg: Config
    overrides: dict[str, Any]
    budgets: list[int]
    rung: int = 0
    run_id: str = ""
    reported: set[int] = field(default_factory=set)

    @property
    def number(self) -> int:
        return self.trial.number


# --------------------------------------------------------------------------------------------------------
# Checks before anything starts
# --------------------------------------------------------------------------------------------------------
def _local(path: str) -> bool:
    return "://" not in path and not path.startswith("dbfs:")


def check_inputs(base: Config, space: SearchSpace, opts: TuneOptions) -> None:
    """Everything that can be wrong before the first trial, as one-line errors (no Spark, no training)."""
    from ucluster.train.trainer import preflight

    for name, value, least in (("--trials", opts.trials, 1), ("--parallel", opts.parallel, 0),
                               ("--rungs", opts.rungs, 1), ("--reduction-factor", opts.reduction_factor, 2),
                               ("--trial-timeout", opts.trial_timeout, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise TuneError(f"{name} must be an integer >= {least}, got {value!r}")
    if opts.write_conf and Path(opts.write_conf).exists() and not opts.overwrite:
        raise TuneError(f"{opts.write_conf}: already exists (pass --overwrite to replace it)")
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise TuneError(f"{out}: exists and is not a directory")
    if opts.storage == "memory" and (out / "trials").is_dir() and any((out / "trials").iterdir()):
        raise TuneError(f"{out}: holds the trials of an earlier search; with --storage memory (trial numbers start "
                        "again at 0) choose a new --out")
    if not space.params:
        raise TuneError(f"{space.source}: no parameters to search")
    # The dataset and the selection, checked as a trial would (a scratch output dir: no checkpoint to trip on).
    scratch = dataclasses.replace(base.run, output_dir=str(out.absolute() / "trials" / ".preflight"), resume=False)
    counts = preflight(dataclasses.replace(base, run=scratch), 1)["selected_jets"]
    if not counts.get("val"):
        raise TuneError(f"{base.data.path}: no validation jets pass the selection; the search chooses on the 'val' "
                        "split so that the test split stays unbiased (convert with a val fraction > 0)")


def _trial_run_config(base: Config, out: Path, number: int, parent_id: str, uri: str) -> Config:
    """``base`` with the run section a trial needs (its own directory, nested under the parent run) and the
    evaluation selection pinned to the base's (``data.eval_window``)."""
    data = base.data
    if _local(data.path) and data.path:
        data = dataclasses.replace(data, path=str(Path(data.path).absolute()))
    if not data.eval_window:  # every trial is scored on the base selection's val/test jets, whatever it trains on
        data = dataclasses.replace(data, eval_window=[data.mass_min, data.mass_max, data.pt_min, data.pt_max])
    run = dataclasses.replace(base.run, output_dir=str(out / "trials" / f"trial_{number:04d}"),
                              run_name=f"trial-{number}", parent_run_id=parent_id, tracking_uri=uri,
                              resume=False, np=1, registered_model="")
    return dataclasses.replace(base, data=data, run=run)


def _with_threads(cfg: Config, threads: int) -> Config:
    """Give each trial its share of an executor's cores, where the trainer has a knob for it."""
    if "threads_per_worker" in {f.name for f in dataclasses.fields(RunConfig)} and not cfg.run.threads_per_worker:
        return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, threads_per_worker=threads))
    return cfg


# --------------------------------------------------------------------------------------------------------
# The search
# --------------------------------------------------------------------------------------------------------
def _open_study(opts: TuneOptions, out: Path, seed: int):
    """Create the study, or continue the one already in the storage (persisted studies grow across runs)."""
    import optuna

    try:
        if opts.storage == "memory":
            storage = optuna.storages.InMemoryStorage()
        else:
            storage = optuna.storages.RDBStorage(opts.storage or f"sqlite:///{out / 'optuna.db'}")
        probe = optuna.create_study(storage=storage, study_name=opts.study_name, direction="maximize",
                                    load_if_exists=True)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy/Optuna errors: bad URL, unreachable database
        raise TuneError(f"--storage {opts.storage or 'sqlite in --out'}: cannot open the Optuna study "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if probe.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise TuneError(f"study '{opts.study_name}' in {opts.storage or out / 'optuna.db'} minimises; "
                        f"this tuner maximises {OBJECTIVE} (use another --study-name)")
    earlier = probe.get_trials(deepcopy=False)
    for t in earlier:  # left RUNNING by an interrupted earlier invocation: nothing is running them any more
        if t.state == optuna.trial.TrialState.RUNNING:
            probe.tell(t.number, state=optuna.trial.TrialState.FAIL)
    # Offsetting the seed by the trials already there keeps a continued study from re-proposing its first points.
    sampler = optuna.samplers.TPESampler(seed=seed + len(earlier))
    return optuna.load_study(study_name=opts.study_name, storage=storage, sampler=sampler)


def tune(base: Config, space: SearchSpace, opts: TuneOptions, spark=None,
         echo: Callable[[str], None] = print) -> TuneResult:
    """Run the search; returns the best complete trial and one row per trial of the study."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from ucluster.tracking import setup_mlflow, tracking_uri

    check_inputs(base, space, opts)
    out = Path(opts.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    study = _open_study(opts, out, base.train.seed if opts.seed is None else opts.seed)
    if spark is None:
        from ucluster.spark import get_spark

        spark = get_spark("ucluster-tune")
    sc = spark.sparkContext
    parallel = opts.parallel or sc.defaultParallelism
    threads = max(1, sc.defaultParallelism // parallel)
    uri = tracking_uri(out, base.run.tracking_uri)
    setup_mlflow(out, base.run.experiment, base.run.tracking_uri)
    client = MlflowClient(tracking_uri=uri)
    epochs = base.train.epochs
    with mlflow.start_run(run_name=base.run.run_name or f"tune-{opts.study_name}",
                          tags={"ucluster.kind": "tune", "ucluster.dataset": base.data.path}) as parent:
        parent_id = parent.info.run_id
        mlflow.log_params({"tune.trials": opts.trials, "tune.parallel": parallel, "tune.rungs": opts.rungs,
                           "tune.reduction_factor": opts.reduction_factor, "tune.epochs": epochs,
                           "tune.study": opts.study_name, "tune.space": space.source, "tune.objective": OBJECTIVE})
        mlflow.log_text(base.to_yaml(redacted=True), "base_config.yaml")  # a record: no credentials
        mlflow.log_text(yaml.safe_dump({"params": {p.name: _param_dict(p) for p in space.params}}, sort_keys=False),
                        "search_space.yaml")
        search = _Search(study, space, opts, base, out, parent_id, uri, client, threads, echo)
        echo(f"tuning: {opts.trials} trial(s), {parallel} at a time, {epochs} epochs, "
             f"{opts.rungs} rung(s) x{opts.reduction_factor}; MLflow parent run {parent_id}")
        search.run(sc, parallel)
        rows = trial_rows(study)
        atomic_write_bytes(out / "trials.json", json.dumps(rows, indent=1, default=str).encode())
        mlflow.log_artifact(str(out / "trials.json"))
        counts = {s: sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL")}
        mlflow.log_metrics({f"n_{s.lower()}": n for s, n in counts.items()})
        complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
        if not complete:
            raise TuneError(f"no trial completed ({counts['PRUNED']} pruned, {counts['FAIL']} failed); "
                            f"see {out / 'trials.json'} and {out / 'trials'}/*/trial.log")
        best_trial = study.best_trial
        best = next(r for r in rows if r["number"] == best_trial.number)
        best_cfg = config_from_dict(best_trial.user_attrs["config"], source=f"trial {best_trial.number}")
        best_cfg = dataclasses.replace(best_cfg, run=base.run)
        text = _best_yaml(best_cfg, best, opts.study_name, parent_id)
        best_yaml = out / "best.yaml"
        atomic_write_bytes(best_yaml, text.encode())
        mlflow.log_artifact(str(best_yaml))
        mlflow.log_metrics({f"best_{k}": best[k] for k in (OBJECTIVE, "test_cluster_acc", "test_nmi", "test_ari")
                            if isinstance(best.get(k), float) and math.isfinite(best[k])})
        mlflow.set_tags({"ucluster.tune.best_trial": str(best["number"]),
                         "ucluster.tune.best_run_id": best.get("run_id", "")})
        if opts.write_conf:
            write_new(opts.write_conf, text, opts.overwrite)
    return TuneResult(best, rows, best_yaml, parent_id, uri, study)


class _Search:
    """The ask -> run batch -> report -> promote/prune loop (state shared by its steps)."""

    def __init__(self, study, space: SearchSpace, opts: TuneOptions, base: Config, out: Path, parent_id: str,
                 uri: str, client, threads: int, echo: Callable[[str], None]):
        self.study, self.space, self.opts, self.base, self.out = study, space, opts, base, out
        self.parent_id, self.uri, self.client, self.threads, self.echo = parent_id, uri, client, threads, echo

    def run(self, sc, parallel: int) -> None:
        promoted: list[_Trial] = []
        asked = 0
        while True:
            batch, promoted = promoted[:parallel], promoted[parallel:]  # promotions first, as in ASHA
            while len(batch) < parallel and asked < self.opts.trials:
                asked += 1
                t = self._new_trial()
                if t is not None:
                    batch.append(t)
            if not batch:
                return
            items = [self._item(t) for t in batch]
            sc.setJobDescription(f"ucluster tune: trials {[t.number for t in batch]}")
            t0 = time.perf_counter()
            results = sc.parallelize(items, len(items)).map(run_trial_task).collect()
            self.echo(f"batch of {len(items)} trial rung(s) took {time.perf_counter() - t0:.0f} s")
            ok = [(t, r) for t, r in zip(batch, results, strict=True) if self._record(t, r)]
            for t, _ in ok:  # decided after the whole batch reported, so arrival order does not matter
                if self._decide(t):
                    promoted.append(t)

    def _new_trial(self) -> _Trial | None:
        import optuna

        trial = self.study.ask()
        base = _trial_run_config(self.base, self.out, trial.number, self.parent_id, self.uri)
        try:
            overrides, cfg = self.space.sample(trial, base)
        except ConfigError as exc:
            trial.set_user_attr("error", str(exc))
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            self.echo(f"trial {trial.number}: sampled an invalid config ({exc})")
            return None
        cfg = _with_threads(cfg, self.threads)
        budgets = rung_budgets(cfg.train.epochs, cfg.train.pretrain_epochs, self.opts.rungs, self.opts.reduction_factor)
        trial.set_user_attr("overrides", overrides)
        # full budget; best.yaml swaps in the base run section. Redacted: the study storage is a record too.
        trial.set_user_attr("config", redact_config_dict(cfg.to_dict()))
        trial.set_user_attr("budgets", budgets)
        return _Trial(trial, cfg, overrides, budgets)

    def _item(self, t: _Trial) -> dict[str, Any]:
        cfg = dataclasses.replace(t.cfg, train=dataclasses.replace(t.cfg.train, epochs=t.budgets[t.rung]),
                                  run=dataclasses.replace(t.cfg.run, resume=t.rung > 0))
        return {"number": t.number, "rung": t.rung, "dir": t.cfg.run.output_dir, "config": cfg.to_dict(),
                "tracking_uri": self.uri, "timeout": self.opts.trial_timeout}

    def _record(self, t: _Trial, res: dict[str, Any]) -> bool:
        """Report the rung's per-epoch values to Optuna; a failed rung fails the trial. True if it went well."""
        import optuna

        if not res.get("ok"):
            t.trial.set_user_attr("error", res.get("error", "unknown error"))
            self.study.tell(t.trial, state=optuna.trial.TrialState.FAIL)
            if t.run_id:
                self.client.set_tag(t.run_id, "ucluster.tune.state", "FAIL")
            self.echo(f"trial {t.number}: failed at rung {t.rung}: {res.get('error')}")
            return False
        t.run_id = res["run_id"]
        for step, value in res["history"]:
            if step not in t.reported and math.isfinite(value):
                t.trial.report(value, step)
                t.reported.add(step)
        value = res["metrics"].get(OBJECTIVE, float("nan"))
        t.trial.set_user_attr(f"rung_{t.rung}", value)
        t.trial.set_user_attr("run_id", t.run_id)
        t.trial.set_user_attr("epochs", res["epochs"])
        t.trial.set_user_attr("metrics", {k: res["metrics"][k] for k in REPORTED if k in res["metrics"]})
        t.trial.set_user_attr("seconds", t.trial.user_attrs.get("seconds", 0.0) + res.get("seconds", 0.0))
        return True

    def _decide(self, t: _Trial) -> bool:
        """Complete, promote (True) or prune the trial that just finished rung ``t.rung``."""
        import optuna

        value = t.trial.user_attrs[f"rung_{t.rung}"]
        if t.rung == len(t.budgets) - 1:
            if not math.isfinite(value):
                t.trial.set_user_attr("error", f"{OBJECTIVE} is not finite")
                self.study.tell(t.trial, state=optuna.trial.TrialState.FAIL)
                state = "FAIL"
            else:
                self.study.tell(t.trial, value)
                state = "COMPLETE"
            self.client.set_tag(t.run_id, "ucluster.tune.state", state)
            self.echo(f"trial {t.number}: {state.lower()} after {t.budgets[t.rung]} epochs, {OBJECTIVE} {value:.4f}")
            return False
        key = f"rung_{t.rung}"
        competing = [ft.user_attrs[key] for ft in self.study.get_trials(deepcopy=False) if key in ft.user_attrs]
        if promotable(value, competing, self.opts.reduction_factor):
            self.echo(f"trial {t.number}: {OBJECTIVE} {value:.4f} after {t.budgets[t.rung]} epochs -> promoted to "
                      f"{t.budgets[t.rung + 1]} epochs")
            t.rung += 1
            return True
        self.study.tell(t.trial, state=optuna.trial.TrialState.PRUNED)
        self.client.set_tag(t.run_id, "ucluster.tune.state", "PRUNED")
        self.echo(f"trial {t.number}: {OBJECTIVE} {value:.4f} after {t.budgets[t.rung]} epochs -> pruned")
        return False


def _param_dict(p) -> dict[str, Any]:
    # unset fields are left out; a bound of 0 or 0.0 is not unset (0.0 == False, so no `in (..., False)` test)
    d = {k: v for k, v in dataclasses.asdict(p).items()
         if k != "name" and v is not None and v is not False and not (isinstance(v, tuple | str | dict) and not v)}
    if "choices" in d:
        d["choices"] = list(d["choices"])
    if "when" in d:  # an any-of condition is a tuple: written back as the list it was read from
        d["when"] = {k: list(v) if isinstance(v, tuple) else v for k, v in d["when"].items()}
    return d


# --------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------
def trial_rows(study) -> list[dict[str, Any]]:
    """One plain dict per trial of the study: the table printed by jobs/tune.py and saved as trials.json."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        metrics = t.user_attrs.get("metrics", {})
        rows.append({"number": t.number, "state": t.state.name, OBJECTIVE: t.value,
                     **{k: metrics.get(k) for k in REPORTED},
                     "epochs": t.user_attrs.get("epochs"), "params": t.user_attrs.get("overrides", t.params),
                     "run_id": t.user_attrs.get("run_id", ""), "error": t.user_attrs.get("error", "")})
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def format_table(rows: list[dict[str, Any]], best: int | None = None) -> str:
    """A fixed-width table: trial, state, validation accuracy (the objective), test accuracy, test NMI and ARI,
    epochs, then the sampled fields."""
    head = (f"{'trial':>5}  {'state':<8}  {'val acc':>7}  {'test acc':>8}  {'nmi':>6}  {'ari':>6}  {'epochs':>6}  "
            "params")
    lines = [head, "-" * len(head)]
    for r in rows:
        def num(key: str, r: dict = r, width: int = 6) -> str:
            return f"{r[key]:{width}.3f}" if isinstance(r.get(key), float) else f"{'-':>{width}}"

        params = " ".join(f"{k}={_fmt(v)}" for k, v in r["params"].items())
        mark = "*" if r["number"] == best else " "
        extra = f"  [{r['error']}]" if r.get("error") else ""
        lines.append(f"{r['number']:>4}{mark}  {r['state']:<8}  {num(OBJECTIVE, width=7)}  "
                     f"{num('test_cluster_acc', width=8)}  {num('test_nmi')}  {num('test_ari')}  "
                     f"{r['epochs'] or '-':>6}  {params}{extra}")
    return "\n".join(lines)


def _best_yaml(cfg: Config, best: dict[str, Any], study_name: str, parent_id: str) -> str:
    masked = ("# run.tracking_uri: credentials masked (***); give them again, or set MLFLOW_TRACKING_URI, to train "
              "with it.\n" if has_credentials(cfg.run.tracking_uri) else "")
    scores = ", ".join(f"{k} {best[k]:.4f}" for k in (OBJECTIVE, "test_cluster_acc", "test_nmi", "test_ari")
                       if isinstance(best.get(k), float))
    return (f"# Best configuration of Optuna study '{study_name}' (jobs/tune.py): trial {best['number']},\n"
            f"# {scores} after {best['epochs']} epochs.\n"
            f"# MLflow: trial run {best['run_id']}, nested under tuning run {parent_id}.\n" + masked
            + cfg.to_yaml(redacted=True))  # best.yaml may well be committed


def write_new(path: str | Path, text: str, overwrite: bool = False) -> Path:
    """Write ``text`` atomically; without ``overwrite`` an existing file is never replaced, even in a race."""
    path = Path(path)
    try:
        (atomic_write_bytes if overwrite else atomic_create)(path, text.encode())
    except FileExistsError:
        raise TuneError(f"{path}: already exists (pass --overwrite to replace it)") from None
    return path
