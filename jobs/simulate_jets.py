"""Spark job: simulate truth-matched jets (Pythia 8 + fastjet) into hls4ml-layout HDF5 files, one per task.

    python -m jobs.simulate_jets --out data/sim --kinds w,z,t --jets-per-kind 1000 --master 'local[*]'
    spark-submit jobs/simulate_jets.py --out /shared/sim --kinds g,q,w,z,t --jets-per-kind 100000

The physics lives in ucluster.sim.pythia_jets; this file only parses arguments and reports.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

PROG = "ucluster-simulate"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Simulate jets with Pythia 8 + fastjet into hls4ml-layout files.")
    add = parser.add_argument
    add("--out", required=True, help="output directory (shared storage on a cluster)")
    add("--kinds", default="w,z,t", help="comma-separated jet kinds among g,q,w,z,t")
    add("--jets-per-kind", type=_positive_int, default=1000)
    add("--seed", type=_positive_int, default=1, help="base seed; task seeds derive from it")
    add("--jets-per-task", type=_positive_int, default=250, help="jets per Spark task and file")
    add("--max-particles", type=_positive_int, default=100, help="constituents kept per jet (P)")
    add("--overwrite", action="store_true", help="replace files of the same kind and seed")
    add("--master", help="Spark master, e.g. 'local[4]'; default: the deployment's own")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    from ucluster.sim import pythia_jets

    try:  # validate before paying for a JVM start
        tasks = pythia_jets.plan_tasks(args.kinds, args.jets_per_kind, args.seed, args.jets_per_task)
    except ValueError as exc:
        parser.error(str(exc))

    if args.master and args.master.startswith("local"):
        # Local Python workers must use this interpreter (e.g. the venv), not the first `python3` on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    own_session = SparkSession.getActiveSession() is None
    builder = SparkSession.builder.appName("ucluster-simulate-jets")
    if args.master:
        builder = builder.master(args.master)
    if own_session:
        builder = builder.config("spark.ui.showConsoleProgress", "true")
    spark = builder.getOrCreate()
    print(f"{PROG}: {len(tasks)} tasks, {args.jets_per_kind} jets each of {args.kinds} -> {args.out}",
          file=sys.stderr)
    try:
        files = pythia_jets.simulate_to_hdf5(
            spark, args.out, args.kinds, args.jets_per_kind, seed=args.seed, jets_per_task=args.jets_per_task,
            max_particles=args.max_particles, overwrite=args.overwrite)
    except (ValueError, OSError) as exc:  # bad arguments, existing files, unusable output directory
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if own_session:
            spark.stop()

    for path in files:
        print(path)
    for kind, (n_jets, median_mass) in pythia_jets.summarize_files(files).items():
        print(f"{kind}: {n_jets} jets, median jet mass {median_mass:.1f} GeV")
    return 0


if __name__ == "__main__":
    sys.exit(main())
