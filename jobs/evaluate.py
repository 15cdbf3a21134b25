"""Physics report of a cluster assignment: metrics, plots and a summary in MLflow.

    spark-submit jobs/evaluate.py --assignments data/clusters.parquet --run <training run id>
    python -m jobs.evaluate --assignments out.parquet --split test --classes w,z,t --out runs/evaluate
    python -m jobs.evaluate --model runs:/<run id> --data data/jets.parquet      # assigns the test split first

Metrics (Hungarian clustering accuracy, NMI, ARI, per-class purity and efficiency) come from a distributed
count over every selected jet; histograms and the latent PCA from a bounded sample. The selection (classes,
mass window) defaults to the training run's. Metrics are logged as eval_<split>_* and the plots and
summary.txt under evaluation/<split>/, into the run given by --run (else a new run of --experiment).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __package__ in (None, ""):  # run as a file by spark-submit: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--assignments", help="output of jobs/assign.py")
    src.add_argument("--model", help="or: a model (as for jobs/assign.py) to apply to --data's split first "
                     "(assigned under --out, removed afterwards)")
    p.add_argument("--data", help="dataset for --model (with --assignments --anomaly: the event dataset of the "
                   "k-means baseline, if it moved since the assignment)")
    p.add_argument("--split", default="test", help="split to evaluate, or 'all' (default: test)")
    p.add_argument("--classes", default=None, help="comma-separated true classes (default: the training run's)")
    p.add_argument("--mass-min", type=float, default=None, help="jet mass window in GeV (default: the run's)")
    p.add_argument("--mass-max", type=float, default=None)
    p.add_argument("--sample", type=int, default=50000, help="jets collected for the histograms")
    p.add_argument("--latent-sample", type=int, default=3000, help="jets in the latent projection (0: none)")
    p.add_argument("--run", default=None, help="MLflow run to log into (default: a new run)")
    p.add_argument("--experiment", default="ucluster", help="experiment of a new run")
    p.add_argument("--tracking-uri", default="", help="MLflow store (URI or a training --out directory)")
    p.add_argument("--out", default=None, help="also keep the plots and summary here (default: runs/evaluate)")
    p.add_argument("--no-mlflow", action="store_true", help="only write the report to --out")
    p.add_argument("--master", default=None, help="Spark master (default: spark-submit's or local[*])")
    p.add_argument("--anomaly", action="store_true",
                   help="event-level data: per-cluster signal fraction, S/sqrt(B), m_jj per cluster and "
                        "sculpting (ucluster/inference/anomaly.py) instead of the jet-class report")
    p.add_argument("--baseline-clusters", default="model",
                   help="with --anomaly: k of the k-means baseline on (m_j1, m_j2, tau21 x 2) of the same events, "
                        "comma-separated ('model': the model's k; 'none': no baseline)")
    return p.parse_args(argv)


def baseline_counts(text: str, model_k: int) -> list[int]:
    """--baseline-clusters as a list of k ('model' stands for the model's k; 'none' for no baseline)."""
    from ucluster.inference import InferenceError

    if text.strip().lower() == "none":
        return []
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InferenceError("--baseline-clusters is empty: give numbers of clusters, 'model' or 'none'")
    counts = []
    for item in items:
        try:
            k = model_k if item.lower() == "model" else int(item)
        except ValueError:
            raise InferenceError(f"--baseline-clusters: '{item}' is not a number of clusters") from None
        if k < 1:
            raise InferenceError(f"--baseline-clusters: {k} clusters, must be at least 1")
        counts.append(k)
    return sorted(set(counts))


def _baseline_events(spark, data: str, split: str, assigned_splits: list[str]):
    """m_j1, m_j2, tau21 of both jets, labels and m_jj of the events the assignment covered (one split, or with
    'all' the splits it assigned), in key order (k-means depends on the order)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    from ucluster.data import schema as S
    from ucluster.inference import InferenceError
    from ucluster.inference.assign import spark_error

    cols = [S.M_J1, S.M_J2, S.TAU21_J1, S.TAU21_J2, S.LABEL, S.MJJ]
    hint = "pass --data with the event dataset, or --baseline-clusters none"
    try:
        df = spark.read.parquet(data)
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise InferenceError(f"{data}: lacks {missing} for the k-means baseline (not an event-level dataset?); "
                                 f"{hint}")
        if "split" in df.columns:
            wanted = [split] if split != "all" else assigned_splits
            if wanted:
                df = df.where(F.col("split").isin(list(wanted)))
        elif split != "all":
            raise InferenceError(f"{data}: not partitioned by split, so split '{split}' of the baseline is unknown; "
                                 f"{hint}")
        pdf = df.select(S.JET_KEY, *cols).toPandas().sort_values(S.JET_KEY)
    except (PySparkException, Py4JJavaError) as exc:
        raise InferenceError(f"{data}: cannot read the dataset for the k-means baseline ({spark_error(exc)}); "
                             f"{hint}") from None
    return [pdf[c].to_numpy() for c in cols]


def anomaly_main(spark, assignments: str, args: argparse.Namespace, out: str) -> str:
    """The anomaly report of one split of an event-level assignment: reads three small columns."""
    from pyspark.sql import functions as F

    from ucluster.data.schema import JET_MASS, LABEL
    from ucluster.inference import InferenceError
    from ucluster.inference.anomaly import anomaly_report, baseline_reports, baseline_summary, write_and_log
    from ucluster.inference.assign import read_assign_meta
    from ucluster.inference.predict import CLUSTER

    df = spark.read.parquet(assignments)
    if args.split != "all":
        if "split" not in df.columns:
            raise InferenceError("the assignment output is not partitioned by split; use --split all")
        df = df.where(F.col("split") == args.split)
    if LABEL not in df.columns:
        raise InferenceError("the assignment output has no label column: the anomaly report needs the truth")
    pdf = df.select(CLUSTER, LABEL, JET_MASS).toPandas()  # jet_mass holds m_jj in event-level datasets
    if not len(pdf):
        raise InferenceError(f"no events in split '{args.split}' of {assignments}")
    meta = read_assign_meta(assignments)
    k = int(meta["model"]["n_clusters"])
    counts = baseline_counts(args.baseline_clusters, k)
    too_many = [n for n in counts if n > len(pdf)]
    if too_many:
        raise InferenceError(f"--baseline-clusters {too_many[0]}: more clusters than the {len(pdf)} events of split "
                             f"'{args.split}' of {assignments}")
    c, y, m = (pdf[col].to_numpy() for col in (CLUSTER, LABEL, JET_MASS))
    report = anomaly_report(c, y, m, k)
    baselines = {}
    if counts:
        data = args.data or meta["data"]  # the dataset the assignment read, unless the user points elsewhere
        *obs, labels, mjj = _baseline_events(spark, data, args.split, meta.get("splits") or [])
        if len(labels) != len(y) or int(labels.sum()) != int(y.sum()):
            raise InferenceError(f"{data}: split '{args.split}' holds {len(labels)} events ({int(labels.sum())} "
                                 f"signal), the assignment {len(y)} ({int(y.sum())}): not the same events (converted "
                                 "again since?); pass --data with the assigned dataset, or --baseline-clusters none")
        baselines = baseline_reports(*obs, labels, mjj, counts, mjj_edges=report.mjj_edges)
    run_id = write_and_log(report, c, y, m, out, run_id=args.run, tracking_uri=args.tracking_uri,
                           experiment=args.experiment, mlflow_on=not args.no_mlflow, prefix=f"anomaly_{args.split}",
                           baselines=baselines)
    return report.summary + baseline_summary(baselines) + (f"MLflow run {run_id}\n" if run_id else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ucluster.data.schema import DatasetError
    from ucluster.inference import InferenceError
    from ucluster.inference.assign import assign, read_assign_meta
    from ucluster.inference.evaluate import DEFAULT_OUT, evaluate, log_report
    from ucluster.inference.model_source import resolve_model

    if args.sample < 1 or args.latent_sample < 0:
        print("error: --sample must be positive and --latent-sample >= 0", file=sys.stderr)
        return 2
    if args.model and not args.data:
        print("error: --model needs --data (the dataset whose split to assign and evaluate)", file=sys.stderr)
        return 2
    out = args.out or DEFAULT_OUT
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    work = None
    try:
        from ucluster.spark import get_spark

        assignments = args.assignments
        if args.anomaly:
            baseline_counts(args.baseline_clusters, 1)  # a bad value fails in one line before any work
        if args.model:
            model = resolve_model(args.model, args.tracking_uri)
            spark = get_spark("ucluster-evaluate", args.master)
            # beside the report, not in the driver's /tmp: on a cluster the executors write it
            work = os.path.join(out, f".assignments-{args.split}")
            assignments = os.path.join(work, "assignments.parquet")
            shutil.rmtree(work, ignore_errors=True)
            splits = None if args.split == "all" else [args.split]
            assign(spark, model, args.data, assignments, splits=splits, with_latent=args.latent_sample > 0)
        else:
            read_assign_meta(assignments)  # a one-line error before Spark starts
            spark = get_spark("ucluster-evaluate", args.master)
        if args.anomaly:
            print(anomaly_main(spark, assignments, args, out), end="")
            print(f"plots and summary in {out}")
            return 0
        report = evaluate(spark, assignments, split=args.split, classes=classes,
                          mass_window=(args.mass_min, args.mass_max), sample=args.sample,
                          latent_sample=args.latent_sample, out_dir=out)
        if not args.no_mlflow:
            log_report(report, read_assign_meta(assignments), args.split, args.run, args.tracking_uri,
                       args.experiment, out, assignments=args.assignments or "")
    except (InferenceError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)
    print(report.summary, end="")
    print(f"plots and summary in {out}" + (f"; MLflow run {report.run_id}" if report.run_id else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
