"""Distributed hyper-parameter search on Spark with Optuna (``jobs/tune.py``).

The driver owns one Optuna study (SQLite in the output directory, so a search can be continued, or in
memory); each trial's sampled parameters become config overrides; trials run as Spark tasks, each a real
single-worker training in a fresh Python process; every trial is an MLflow run nested under one parent run;
the best complete trial is written as a full config YAML in ``conf/`` form.

Why Optuna rather than hyperopt:

* define-by-run search spaces: a parameter can be sampled only when an earlier one has some value
  (``when:`` in conf/tune.yaml), without hyperopt's nested ``hp.choice`` trees;
* the ask/tell interface lets a driver own the study while the work runs elsewhere (here: Spark tasks),
  and the study's storage (an RDB such as SQLite) makes it durable and resumable;
* intermediate values and pruners: trials report per-epoch accuracy and hopeless ones are stopped early.
  Its successive-halving rule is applied by the driver between rungs (:mod:`ucluster.tune.halving`)
  because our trials train remotely;
* hyperopt's Spark integration (``SparkTrials``) is tied to the Databricks ML runtime, runs one whole
  objective per task with no way to stop a trial part-way, and hyperopt has no pruning.
"""

from ucluster.tune.space import Param, SearchSpace, SpaceError, load_space, parse_space
from ucluster.tune.tuner import TuneError, TuneOptions, TuneResult, format_table, tune

__all__ = ["Param", "SearchSpace", "SpaceError", "TuneError", "TuneOptions", "TuneResult", "format_table",
           "load_space", "parse_space", "tune"]
