"""Assign every jet of a Parquet dataset to a cluster with a trained UCluster model (Spark, in parallel).

    spark-submit jobs/assign.py --model models:/ucluster/1 --data data/jets.parquet --out data/clusters.parquet
    spark-submit jobs/assign.py --model runs:/<run id>/model --data data/jets.parquet --out data/clusters.parquet
    python -m jobs.assign --model runs/train/model.keras --data data/new.parquet --out out.parquet --with-latent

--model: a registered model version (models:/<name>/<version>, or models:/<name>@<alias>), a training run's
logged model (runs:/<run_id>/model, runs:/<run_id> or the bare run id) -- the store is $MLFLOW_TRACKING_URI,
else --tracking-uri, else runs/train/mlflow.db -- a .keras file, or a directory holding model.keras (training
--out or an export).
The output holds jet_key, cluster, distances (squared, to every centroid), soft_assignment, scores
(classification softmax), optionally latent, and label, jet_mass, jet_pt, jet_eta, source_file, source_row,
partitioned by split= like the input.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __package__ in (None, ""):  # run as a file by spark-submit: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="models:/<name>/<version>, runs:/<run_id>/model, a run id, "
                   "a .keras file or its directory")
    p.add_argument("--data", required=True, help="Parquet dataset (root, split= directory or file)")
    p.add_argument("--out", required=True, help="output Parquet directory")
    p.add_argument("--splits", default=None, help="comma-separated splits to assign (default: all)")
    p.add_argument("--with-latent", action="store_true", help="also write the latent vector of every jet")
    p.add_argument("--alpha", type=float, default=None, help="α of the soft assignment (default: the run's final α)")
    p.add_argument("--batch-size", type=int, default=1024, help="jets per Arrow batch and forward pass")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    p.add_argument("--tracking-uri", default="", help="MLflow store of the run (URI or training --out directory)")
    p.add_argument("--master", default=None, help="Spark master (default: spark-submit's or local[*])")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ucluster.data.schema import DatasetError
    from ucluster.inference import InferenceError
    from ucluster.inference.assign import assign
    from ucluster.inference.model_source import resolve_model

    splits = [s.strip() for s in args.splits.split(",") if s.strip()] if args.splits else None
    if os.path.exists(args.out) and not args.overwrite:  # before any download or Spark start
        print(f"error: {os.path.abspath(args.out)}: output already exists (pass --overwrite to replace it)",
              file=sys.stderr)
        return 2
    try:
        model = resolve_model(args.model, args.tracking_uri)
        from ucluster.spark import get_spark

        spark = get_spark("ucluster-assign", args.master)
        summary = assign(spark, model, args.data, args.out, overwrite=args.overwrite, with_latent=args.with_latent,
                         alpha=args.alpha, batch_size=args.batch_size, splits=splits)
    except (InferenceError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"assigned {summary.jets} jets in {summary.seconds:.1f} s ({summary.jets_per_s:.0f} jets/s) with "
          f"{summary.model} (alpha {summary.alpha:g}) -> {summary.output}")
    for split, by_cluster in summary.counts.items():
        print(f"  {split}: " + ", ".join(f"cluster {k}: {n}" for k, n in by_cluster.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
