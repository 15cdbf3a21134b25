"""Spark job: hls4ml HDF5 files -> partitioned Parquet dataset.

    spark-submit conversion/job.py --input 'data/h5/*.h5' --output data/jets.parquet
    python -m conversion.job --input data/h5 --output data/jets.parquet --master 'local[2]'
"""

from __future__ import annotations

import argparse
import sys

if __package__ in (None, ""):  # run as a file by spark-submit: make the repository importable
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.dirname(__file__)))

from conversion.convert import convert  # noqa: E402
from conversion.hls4ml_reader import ConversionError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, nargs="+", help="HDF5 files, directories or globs")
    p.add_argument("--output", required=True, help="Parquet dataset directory to create")
    p.add_argument("--train-fraction", type=float, default=0.8)
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--max-particles", type=int, default=None, help="keep the leading N particles (default: all)")
    p.add_argument("--rows-per-task", type=int, default=65536,
                   help="jets per Spark task (the unit of parallelism; memory does not grow with it)")
    p.add_argument("--row-group-size", type=int, default=4096, help="jets per Parquet row group")
    p.add_argument("--compression", default="snappy", choices=["zstd", "snappy", "lz4", "gzip", "none"])
    p.add_argument("--overwrite", action="store_true", help="replace an existing output directory")
    p.add_argument("--local", action="store_true", help="run without Spark: in this process, or --processes")
    p.add_argument("--processes", type=int, default=1,
                   help="with --local: convert in this many local processes (a many-core machine without a JVM)")
    p.add_argument("--layout", default="hls4ml", choices=["hls4ml", "lhco"],
                   help="hls4ml jet files, or LHC Olympics R&D event files (event-level dataset)")
    p.add_argument("--signal-fraction", type=float, default=None,
                   help="lhco: thin the signal to this fraction of the events (e.g. 0.01)")
    p.add_argument("--mjj-min", type=float, default=0.0, help="lhco: dijet mass window in GeV")
    p.add_argument("--mjj-max", type=float, default=float("inf"))
    p.add_argument("--master", default=None, help="Spark master (default: spark-submit's or local[*])")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    spark = None
    if args.processes < 1 or (args.processes > 1 and not args.local):
        print("error: --processes must be >= 1 and needs --local (with Spark the executors are the processes)",
              file=sys.stderr)
        return 2
    if not args.local:
        from ucluster.spark import get_spark

        spark = get_spark("ucluster-convert", args.master)
    fractions = {"train": args.train_fraction, "test": args.test_fraction, "val": args.val_fraction}
    try:
        if args.layout == "lhco":
            from conversion.lhco_events import convert_events

            summary = convert_events(
                args.input, args.output, spark=spark, fractions=fractions,
                max_particles_per_jet=args.max_particles or 100, signal_fraction=args.signal_fraction,
                mjj_window=(args.mjj_min, args.mjj_max), row_group_size=args.row_group_size,
                compression=args.compression, overwrite=args.overwrite, processes=args.processes)
        else:
            summary = convert(
                args.input, args.output, spark=spark, fractions=fractions,
                max_particles=args.max_particles, rows_per_task=args.rows_per_task,
                row_group_size=args.row_group_size, compression=args.compression, overwrite=args.overwrite,
                processes=args.processes)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {summary.jets} jets from {summary.files} file(s) to {summary.output} in {summary.seconds:.1f} s")
    for split, by_class in summary.counts.items():
        print(f"  split={split}: " + ", ".join(f"{c}={n}" for c, n in by_class.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
