"""`make demo`: simulate W/Z/top jets with Pythia -> convert to Parquet -> train UCluster -> print results.

Everything lands under --out (default runs/demo): the HDF5 files, the Parquet dataset, checkpoints and the
MLflow store. Simulated files and the converted dataset are reused when already there, so a second run only
trains again.
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
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--jets-per-kind", type=int, default=1000)
    p.add_argument("--kinds", default="w,z,t")
    p.add_argument("--np", type=int, default=-1, help="training workers (HorovodRunner meaning)")
    p.add_argument("--config", default=str(Path(__file__).resolve().parent.parent / "conf" / "demo.yaml"))
    args = p.parse_args(argv)

    from conversion.convert import convert
    from conversion.hls4ml_reader import ConversionError
    from ucluster.config import ConfigError, load_config
    from ucluster.sim.pythia_jets import plan_tasks, simulate_to_hdf5
    from ucluster.spark import get_spark
    from ucluster.tracking import ui_hint
    from ucluster.train.checkpoint import checkpoint_path
    from ucluster.train.trainer import TrainingError, train

    out = Path(args.out)
    h5_dir, dataset, train_dir = out / "h5", out / "jets.parquet", out / "train"
    t0 = time.perf_counter()
    spark = get_spark("ucluster-demo", os.environ.get("UCLUSTER_SPARK_MASTER", "local[*]"))
    spark.sparkContext.setLogLevel("ERROR")
    kinds = args.kinds.split(",")
    wanted = [h5_dir / t.file_name for t in plan_tasks(kinds, args.jets_per_kind)]
    if all(f.exists() for f in wanted):
        print(f"[1/3] reusing {len(wanted)} simulated files in {h5_dir}")
    else:
        print(f"[1/3] simulating {args.jets_per_kind} jets each of {args.kinds} with Pythia 8 on Spark ...")
        simulate_to_hdf5(spark, h5_dir, kinds, args.jets_per_kind, overwrite=True)
    try:
        if (dataset / "_ucluster.json").exists() and dataset.stat().st_mtime >= max(f.stat().st_mtime for f in wanted):
            print(f"[2/3] reusing the Parquet dataset {dataset}")
        else:
            print(f"[2/3] converting to Parquet -> {dataset}")
            s = convert([str(f) for f in wanted], dataset, spark=spark, overwrite=True)
            print("      " + "; ".join(f"{k}: {sum(v.values())} jets" for k, v in s.counts.items()))
        cfg = load_config(args.config, {"data.path": str(dataset), "run.output_dir": str(train_dir),
                                        "run.np": args.np})
        if checkpoint_path(train_dir).exists():
            # A finished earlier demo run stays in MLflow; its checkpoint is only needed to resume it.
            checkpoint_path(train_dir).unlink()
        print(f"[3/3] training UCluster ({cfg.train.pretrain_epochs} pretraining + "
              f"{cfg.train.epochs - cfg.train.pretrain_epochs} clustering epochs, {abs(args.np)} worker(s)) ...")
        result = train(cfg, spark=spark)
    except (ConversionError, ConfigError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print()
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    print(f"  clustering accuracy (test split, Hungarian): {result['test_cluster_acc']:.3f}")
    print(f"  NMI {result['test_nmi']:.3f}   ARI {result['test_ari']:.3f}   "
          f"classification acc ({cfg.model.target}) {result['test_class_acc']:.3f}")
    print("  per-class purity: " + ", ".join(f"{k}={v:.2f}" for k, v in result["purity"].items()))
    print(f"  model: {result['model_path']}")
    print(f"  MLflow run {result['run_id']} -> {ui_hint(train_dir, cfg.run.tracking_uri)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
