"""Search UCluster's hyper-parameters with Optuna, one single-worker training per Spark task.

    spark-submit jobs/tune.py --data data/jets.parquet --config conf/demo.yaml --trials 20 --parallel 2 \\
        --out runs/tune [--space conf/tune.yaml] [--epochs 10] [--write-conf conf/best.yaml]
    python -m jobs.tune --data data/jets.parquet --config conf/demo.yaml --trials 4 --train.kmeans_sample 2000

The objective is the validation split's clustering accuracy (val_cluster_acc, maximised); the test split's
figures of every trial are reported beside it, unbiased by the choice. Trials train for a short
budget first; only the best 1/--reduction-factor of each rung trains on (successive halving), resuming from
its checkpoint. Results: an MLflow parent run with one nested run per trial, <out>/trials.json, and the best
trial's full config as <out>/best.yaml (and --write-conf, never over an existing file without --overwrite).
Re-running with the same --out continues the Optuna study stored in <out>/optuna.db (one driver per study).
On a cluster, --out must be on storage that every executor sees (each trial writes its checkpoint and log
there), and MLFLOW_TRACKING_URI should name a tracking server: the default SQLite store suits one machine.
Any config field can be overridden with --section.field VALUE (the base config every trial starts from).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __package__ in (None, ""):  # run as a file by spark-submit: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ucluster.config import ConfigError, add_config_arguments, load_config, overrides_from_args  # noqa: E402

DEFAULT_SPACE = Path(__file__).resolve().parent.parent / "conf" / "tune.yaml"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="base YAML config (default conf/ucluster.yaml)")
    p.add_argument("--data", dest="cfg__data__path", default=None, metavar="PATH", help="Parquet dataset (data.path)")
    p.add_argument("--epochs", dest="cfg__train__epochs", default=None, metavar="N",
                   help="full budget per trial (train.epochs)")
    p.add_argument("--space", default=str(DEFAULT_SPACE), help="search-space YAML (default conf/tune.yaml)")
    p.add_argument("--out", default="runs/tune", help="trials, Optuna study, MLflow store and best.yaml")
    p.add_argument("--trials", type=int, default=20, help="new trials to run")
    p.add_argument("--parallel", type=int, default=0, help="trials at a time (default: Spark default parallelism)")
    p.add_argument("--rungs", type=int, default=2, help="successive-halving rungs (1 = no early stopping)")
    p.add_argument("--reduction-factor", type=int, default=3, help="keep the top 1/N of each rung")
    p.add_argument("--storage", default="", help="Optuna storage URL (default sqlite in --out; 'memory')")
    p.add_argument("--study-name", default="ucluster-tune")
    p.add_argument("--seed", type=int, default=None, help="sampler seed (default train.seed)")
    p.add_argument("--trial-timeout", type=int, default=0, help="seconds per trial rung (0 = no limit)")
    p.add_argument("--write-conf", default="", help="also write the best config here, e.g. conf/best.yaml")
    p.add_argument("--overwrite", action="store_true", help="let --write-conf replace an existing file")
    add_config_arguments(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ucluster.data.schema import DatasetError
    from ucluster.redact import redact_text
    from ucluster.tracking import ui_hint
    from ucluster.train.trainer import TrainingError
    from ucluster.tune import SpaceError, TuneError, TuneOptions, format_table, load_space, tune

    opts = TuneOptions(out=args.out, trials=args.trials, parallel=args.parallel, rungs=args.rungs,
                       reduction_factor=args.reduction_factor, storage=args.storage, study_name=args.study_name,
                       seed=args.seed, trial_timeout=args.trial_timeout, write_conf=args.write_conf,
                       overwrite=args.overwrite)
    try:
        cfg = load_config(args.config, overrides_from_args(args))
        space = load_space(args.space, cfg)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the job prints its own progress and table
        result = tune(cfg, space, opts)
    except (ConfigError, SpaceError, TuneError, TrainingError, DatasetError) as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    print()
    print(format_table(result.rows, result.best["number"]))
    best = result.best
    scores = ", ".join(f"{k} {best[k]:.4f}" for k in ("val_cluster_acc", "test_cluster_acc", "test_nmi", "test_ari")
                       if isinstance(best.get(k), float))
    copies = f" and {opts.write_conf}" if opts.write_conf else ""
    print(f"\nbest: trial {best['number']} ({scores}) -> {result.best_yaml}{copies}")
    print(f"MLflow parent run {result.parent_run_id}: {ui_hint(opts.out, cfg.run.tracking_uri)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
