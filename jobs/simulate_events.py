"""Spark job: simulate QCD dijet and W'(3.5 TeV) -> 4q signal events into LHC Olympics R&D-layout HDF5 files.

Two signals (ucluster/sim/pythia_events.py): ``--wprime`` W' -> W Z, ``--wprime-xy`` W' -> X(500) Y(100), the
R&D set's masses.

    python -m jobs.simulate_events --out data/events --qcd 2000 --wprime 200 --master 'local[*]'
    python -m jobs.simulate_events --out data/events --qcd 2000 --wprime-xy 200 --master 'local[*]'
    python -m jobs.simulate_events --out data/events --qcd 100000 --wprime 5000 --processes 16   # no Spark

The physics lives in ucluster.sim.pythia_events; this file only parses arguments and reports.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

PROG = "ucluster-simulate-events"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output directory (shared storage on a cluster)")
    p.add_argument("--qcd", type=int, default=1000, help="background events")
    p.add_argument("--wprime", type=int, default=100, help="signal events W' -> W Z -> 4q")
    p.add_argument("--wprime-xy", type=int, default=0, help="signal events W' -> X(500) Y(100) -> 4q")
    p.add_argument("--seed", type=int, default=1, help="base seed; task seeds derive from it")
    p.add_argument("--events-per-task", type=int, default=500, help="events per task and file")
    p.add_argument("--overwrite", action="store_true", help="replace files of the same kind and seed")
    p.add_argument("--master", help="Spark master, e.g. 'local[4]'; default: the deployment's own")
    p.add_argument("--processes", type=int, default=0, help="run in N local processes instead of Spark")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ucluster.sim import pythia_events

    events = {k: n for k, n in (("qcd", args.qcd), ("wprime", args.wprime), ("wprime_xy", args.wprime_xy)) if n}
    try:
        tasks = pythia_events.plan_tasks(events, args.seed, args.events_per_task)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    spark = None
    if not args.processes:
        if args.master and args.master.startswith("local"):
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        from ucluster.spark import get_spark

        spark = get_spark("ucluster-simulate-events", args.master)
    print(f"{PROG}: {len(tasks)} tasks ({events}) -> {args.out}", file=sys.stderr)
    try:
        files = pythia_events.simulate_events(spark, args.out, events, args.seed, args.events_per_task,
                                              args.overwrite, args.processes)
    except (ValueError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    for path in files:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
