"""SparkSession helper shared by the jobs: keep spark-submit's / Databricks' master, default to local."""

from __future__ import annotations

import os


def get_spark(app_name: str, master: str | None = None):
    """Return the active SparkSession or build one; ``master`` only applies when none is configured."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    elif "PYSPARK_GATEWAY_PORT" not in os.environ:  # not under spark-submit, which sets its own master
        builder = builder.master(os.environ.get("UCLUSTER_SPARK_MASTER", "local[*]"))
    # Executors run this package's Python: make sure they use the same interpreter as the driver.
    import sys

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (builder.config("spark.ui.showConsoleProgress", "true")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .getOrCreate())
