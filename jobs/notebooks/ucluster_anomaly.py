# Databricks notebook source
# ruff: noqa: E402 - imports live in the cells that use them
# MAGIC %md
# MAGIC # UCluster anomaly mode: events → clusters → where does the signal concentrate?
# MAGIC
# MAGIC LHC Olympics R&D-layout event files (the real `events_anomalydetection.h5`, or QCD + W' events simulated
# MAGIC here with Pythia on Spark) are converted to an event-level Parquet dataset with an injected signal
# MAGIC fraction, UCluster is trained on the event point clouds (`data.level: event`), the test split is assigned
# MAGIC and the anomaly report (per-cluster signal fraction, S/√B, m_jj per cluster, m_jj sculpting) is logged into
# MAGIC the training's MLflow run. Outside Databricks each widget reads `UCLUSTER_NB_<NAME>` or its default.

# COMMAND ----------

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
try:
    _here = Path(__file__).resolve().parent
except NameError:
    _here = Path(os.getcwd())
ROOT = _here.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
try:
    dbutils  # noqa: B018 - defined by Databricks
except NameError:
    dbutils = None


def widget(name: str, default: str, label: str) -> str:
    """A text widget on Databricks; elsewhere $UCLUSTER_NB_<NAME>, else the default."""
    if dbutils is not None:
        dbutils.widgets.text(name, default, label)
        return dbutils.widgets.get(name)
    return os.environ.get(f"UCLUSTER_NB_{name.upper()}", default)


# COMMAND ----------

INPUT = widget("input", "", "LHCO R&D-layout HDF5 files (directory or glob); empty = simulate QCD + W' events")
WORKDIR = Path(widget("workdir", "runs/notebook_anomaly", "working directory"))
CONFIG = widget("config", str(ROOT / "conf" / "anomaly_demo.yaml"), "training config YAML")
OVERRIDES = json.loads(widget("overrides", "{}", "config overrides as JSON") or "{}")
SIGNAL_FRACTION = float(widget("signal_fraction", "0.05", "injected signal fraction"))
N_QCD = int(widget("qcd", "1500", "QCD events simulated when no input is given"))
N_WPRIME = int(widget("wprime", "300", "W' events simulated when no input is given"))
print(f"input={INPUT or '(simulate)'} workdir={WORKDIR} signal_fraction={SIGNAL_FRACTION} overrides={OVERRIDES}")

# COMMAND ----------

from ucluster.spark import get_spark

spark = get_spark("ucluster-anomaly-notebook", None if dbutils is not None else "local[*]")
if INPUT:
    inputs = INPUT
else:
    from ucluster.sim.pythia_events import simulate_events

    inputs = [str(p) for p in simulate_events(spark, WORKDIR / "h5", {"qcd": N_QCD, "wprime": N_WPRIME},
                                              events_per_task=150, overwrite=True)]

# COMMAND ----------

from conversion.lhco_events import convert_events

DATASET = WORKDIR / "events.parquet"
summary = convert_events(inputs, str(DATASET), spark=spark, max_particles_per_jet=50,
                         signal_fraction=SIGNAL_FRACTION, overwrite=True, progress=False)
print(summary.counts)

# COMMAND ----------

from ucluster.config import load_config
from ucluster.train.trainer import train

cfg = load_config(CONFIG, {**OVERRIDES, "data.path": str(DATASET), "run.output_dir": str(WORKDIR / "train")})
result = train(cfg, spark=spark)

# COMMAND ----------

from jobs import evaluate as evaluate_job

evaluate_job.main(["--model", f"runs:/{result['run_id']}", "--data", str(DATASET), "--anomaly",
                   "--tracking-uri", str(WORKDIR / "train"), "--run", result["run_id"],
                   "--out", str(WORKDIR / "report")])
