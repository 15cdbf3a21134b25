"""Round 12, CPU: the per-epoch metrics of a ``jobs.train`` run, read back from its MLflow store, as the EPOCH
lines of ``studies.quality_gpu sweep`` (so ``docs/quality_round12/swings.py`` reads both).

    .venv/bin/python docs/quality_round11/cpu/history.py NAME /tmp/run_dir/mlflow.db >> NAME.log
"""

import sys

from mlflow.tracking import MlflowClient

name, db = sys.argv[1], sys.argv[2]
client = MlflowClient(f"sqlite:///{db}")
run = client.search_runs([e.experiment_id for e in client.search_experiments()], order_by=["start_time DESC"])[0]
keys = ("loss", "test_class_acc", "val_cluster_acc", "test_cluster_acc", "live_val_cluster_acc",
        "live_test_cluster_acc")
series = {k: {m.step: m.value for m in client.get_metric_history(run.info.run_id, k)} for k in keys}
for epoch in sorted(series["loss"]):
    fields = " ".join(f"{k}={series[k][epoch]:.4f}" for k in keys if epoch in series[k])
    print(f"EPOCH {name} {epoch} {fields}")
