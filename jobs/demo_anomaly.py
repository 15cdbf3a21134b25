"""`make demo-anomaly`: simulate QCD + W' events -> convert (injected signal fraction) -> train UCluster on
events -> anomaly report (per-cluster signal fraction, S/sqrt(B), m_jj) and the k-means baseline.

Everything lands under --out (default runs/demo_anomaly). Simulated files are reused when already there.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="runs/demo_anomaly")
    p.add_argument("--qcd", type=int, default=1500)
    p.add_argument("--wprime", type=int, default=300)
    p.add_argument("--signal-fraction", type=float, default=0.05)
    p.add_argument("--config", default=str(Path(__file__).resolve().parent.parent / "conf" / "anomaly_demo.yaml"))
    args = p.parse_args(argv)

    from conversion.hls4ml_reader import ConversionError
    from conversion.lhco_events import convert_events
    from jobs import evaluate as evaluate_job
    from ucluster.config import ConfigError, load_config
    from ucluster.sim.pythia_events import plan_tasks, simulate_events
    from ucluster.spark import get_spark
    from ucluster.train.trainer import TrainingError, train

    out = Path(args.out)
    h5_dir, dataset, train_dir = out / "h5", out / "events.parquet", out / "train"
    t0 = time.perf_counter()
    spark = get_spark("ucluster-demo-anomaly", os.environ.get("UCLUSTER_SPARK_MASTER", "local[*]"))
    spark.sparkContext.setLogLevel("ERROR")
    events = {"qcd": args.qcd, "wprime": args.wprime}
    wanted = [h5_dir / t.file_name for t in plan_tasks(events, events_per_task=150)]
    if all(f.exists() for f in wanted):
        print(f"[1/4] reusing {len(wanted)} simulated files in {h5_dir}")
    else:
        print(f"[1/4] simulating {args.qcd} QCD and {args.wprime} W' events with Pythia 8 on Spark ...")
        simulate_events(spark, h5_dir, events, events_per_task=150, overwrite=True)
    try:
        print(f"[2/4] converting with signal fraction {args.signal_fraction} -> {dataset}")
        s = convert_events([str(f) for f in wanted], str(dataset), spark=spark, max_particles_per_jet=50,
                           signal_fraction=args.signal_fraction, overwrite=True, progress=False)
        print("      " + "; ".join(f"{k}: {v}" for k, v in s.counts.items()))
        cfg = load_config(args.config, {"data.path": str(dataset), "run.output_dir": str(train_dir)})
        print(f"[3/4] training UCluster on events ({cfg.train.pretrain_epochs} pretraining + "
              f"{cfg.train.epochs - cfg.train.pretrain_epochs} clustering epochs) ...")
        result = train(cfg, spark=spark)
    except (ConversionError, ConfigError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("[4/4] anomaly report on the test split")
    # with the k-means baseline on (m_j1, m_j2, tau21 x 2) of the same test events, at the model's k
    rc = evaluate_job.main(["--model", f"runs:/{result['run_id']}", "--data", str(dataset), "--anomaly",
                            "--tracking-uri", str(train_dir), "--run", result["run_id"],
                            "--out", str(out / "report")])
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
