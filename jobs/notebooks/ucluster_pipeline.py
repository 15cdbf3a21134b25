# Databricks notebook source
# ruff: noqa: E402 - imports live in the cells that use them
# MAGIC %md
# MAGIC # UCluster pipeline: convert → train → assign → evaluate
# MAGIC
# MAGIC hls4ml HDF5 jet files are converted to a Parquet dataset, UCluster (ABCnet + deep k-means) is trained
# MAGIC with Horovod, every jet is assigned to a cluster on Spark, and the physics report (clustering accuracy,
# MAGIC NMI, ARI, purity/efficiency, histograms, latent projection) is logged into the training's MLflow run.
# MAGIC
# MAGIC Parameters are widgets on Databricks. Outside Databricks (no `dbutils`) each widget reads the environment
# MAGIC variable `UCLUSTER_NB_<NAME>` or its default, so the notebook also runs top to bottom locally:
# MAGIC
# MAGIC     UCLUSTER_NB_WORKDIR=runs/nb python -c "import runpy; runpy.run_path('jobs/notebooks/ucluster_pipeline.py')"
# MAGIC
# MAGIC (through `runpy`, not `python <file>`: Horovod's local launcher re-imports a `__main__` script.)

# COMMAND ----------

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

try:  # the repository root, so that `ucluster` imports (Databricks Repos run notebooks from their folder)
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

INPUT = widget("input", "", "hls4ml HDF5 files (directory or glob); empty = simulate Pythia jets")
WORKDIR = Path(widget("workdir", "runs/notebook", "working directory (dataset, checkpoints, outputs)"))
WORKERS = int(widget("workers", "-1", "training workers (HorovodRunner np: <0 local, >0 Spark tasks)"))
CONFIG = widget("config", str(ROOT / "conf" / "demo.yaml"), "training config YAML")
OVERRIDES = json.loads(widget("overrides", "{}", "config overrides as JSON, e.g. {\"train.epochs\": 5}") or "{}")
JETS_PER_KIND = int(widget("jets_per_kind", "1000", "jets simulated per kind when no input is given"))
EVAL_SPLIT = widget("split", "test", "split to evaluate")
print(f"input={INPUT or '(simulate)'} workdir={WORKDIR} workers={WORKERS} config={CONFIG} overrides={OVERRIDES}")

# COMMAND ----------

from ucluster.spark import get_spark

spark = get_spark("ucluster-pipeline")  # Databricks' session if there is one
WORKDIR.mkdir(parents=True, exist_ok=True)
H5_DIR, DATASET = WORKDIR / "h5", WORKDIR / "jets.parquet"
TRAIN_DIR, CLUSTERS, REPORT = WORKDIR / "train", WORKDIR / "clusters.parquet", WORKDIR / "evaluation"

# COMMAND ----------

# MAGIC %md ## 1. Convert hls4ml HDF5 → Parquet

# COMMAND ----------

from conversion.convert import convert

if not INPUT:
    from ucluster.sim.pythia_jets import simulate_to_hdf5

    simulate_to_hdf5(spark, H5_DIR, ["w", "z", "t"], JETS_PER_KIND, overwrite=True)
    INPUT = str(H5_DIR)
conversion = convert(INPUT, DATASET, spark=spark, overwrite=True, progress=False)
print(f"{conversion.jets} jets from {conversion.files} file(s) -> {DATASET}: {conversion.counts}")

# COMMAND ----------

# MAGIC %md ## 2. Train UCluster

# COMMAND ----------

from ucluster.config import load_config
from ucluster.train.checkpoint import checkpoint_path
from ucluster.train.trainer import train

cfg = load_config(CONFIG, {**OVERRIDES, "data.path": str(DATASET), "run.output_dir": str(TRAIN_DIR),
                           "run.np": WORKERS})
if checkpoint_path(TRAIN_DIR).exists():  # a finished earlier run stays in MLflow; start a new one
    checkpoint_path(TRAIN_DIR).unlink()
result = train(cfg, spark=spark)
RUN_ID = result["run_id"]
TRACKING = cfg.run.tracking_uri or str(TRAIN_DIR)  # $MLFLOW_TRACKING_URI (Databricks) still takes precedence
print(f"MLflow run {RUN_ID}: test clustering accuracy {result['test_cluster_acc']:.3f}")

# COMMAND ----------

# MAGIC %md ## 3. Assign every jet to a cluster (Spark)

# COMMAND ----------

from ucluster.inference.assign import assign

# The model registry's version of this training (run.registered_model; on Databricks with Unity Catalog give
# it a three-level name, catalog.schema.ucluster); the run itself where the store has no registry.
MODEL_URI = f"models:/{result['registered_model']}" if result.get("registered_model") else f"runs:/{RUN_ID}"
assignment = assign(spark, MODEL_URI, DATASET, CLUSTERS, overwrite=True, with_latent=True, tracking=TRACKING)
print(f"{assignment.jets} jets assigned with {MODEL_URI} in {assignment.seconds:.1f} s -> {CLUSTERS}: "
      f"{assignment.counts}")

# COMMAND ----------

# MAGIC %md ## 4. Evaluate and log the report into the training run

# COMMAND ----------

from ucluster.inference.assign import read_assign_meta
from ucluster.inference.evaluate import evaluate, log_report

report = evaluate(spark, CLUSTERS, split=EVAL_SPLIT, out_dir=REPORT, latent_sample=3000)
log_report(report, read_assign_meta(CLUSTERS), EVAL_SPLIT, run_id=RUN_ID, tracking=TRACKING,
           assignments=str(CLUSTERS))
print(report.summary)

# COMMAND ----------

if dbutils is not None:  # show the plots inline on Databricks
    import base64

    images = "".join(f'<img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}" width="600"/>'
                     for name, p in report.files.items() if name.endswith(".png"))
    displayHTML(images)  # noqa: F821 - defined by Databricks
else:
    print("plots: " + ", ".join(str(p) for p in report.files.values()))
