"""Benchmark: conversion throughput next to a plain h5py read of the same arrays (the physical limit here).

    python -m studies.benchmark_conversion [--jets 100000] [--h5 some_hls4ml_file.h5]

Without --h5 it simulates 400 Pythia jets and tiles them into a file of --jets jets (default 100k, 640 MB: a
size at which Spark's fixed cost per job, about 0.1 s here, no longer dominates). Prints jets/s for the raw read
(one thread, from the page cache), the in-process conversion (one process: a reader, a compute and a writer
thread overlap) and the Spark conversion (all local cores), and their ratios (target: conversion >= 0.5 x raw).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from ucluster import hls4ml


def simulate_base(path: Path, per_kind: int, seeds: tuple[int, int, int] = (7, 8, 9)) -> Path:
    """A seeded Pythia W/Z/top sample in one hls4ml file: the source every tiled benchmark file repeats."""
    from ucluster.sim.pythia_jets import generate_jets, write_hls4ml_file

    parts = [generate_jets(kind, per_kind, seed) for kind, seed in zip(("w", "z", "t"), seeds, strict=True)]
    return write_hls4ml_file(path, np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def make_tiled_file(path: Path, n_jets: int, source: str | Path) -> None:
    """Repeat the jets of the hls4ml file ``source`` until ``path`` holds ``n_jets``."""
    with h5py.File(source, "r") as f:
        cons, jets = f[hls4ml.CONSTITUENTS][()], f[hls4ml.JETS][()]
        pnames, jnames = f[hls4ml.PARTICLE_NAMES][()], f[hls4ml.JET_NAMES][()]
    reps = -(-n_jets // len(cons))
    with h5py.File(path, "w") as f:
        f.create_dataset(hls4ml.CONSTITUENTS, data=np.tile(cons, (reps, 1, 1))[:n_jets])
        f.create_dataset(hls4ml.JETS, data=np.tile(jets, (reps, 1))[:n_jets])
        f.create_dataset(hls4ml.PARTICLE_NAMES, data=pnames)
        f.create_dataset(hls4ml.JET_NAMES, data=jnames)


def raw_read(path: Path) -> float:
    t0 = time.perf_counter()
    with h5py.File(path, "r") as f:
        cons = f[hls4ml.CONSTITUENTS][()]
        jets = f[hls4ml.JETS][()]
    seconds = time.perf_counter() - t0
    assert cons.shape[0] == jets.shape[0]
    return seconds


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jets", type=int, default=100_000)
    p.add_argument("--h5", default=None, help="an hls4ml file to tile (default: simulate)")
    p.add_argument("--repeat", type=int, default=3, help="best of N timings")
    p.add_argument("--no-spark", action="store_true")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)

    from conversion.convert import convert

    work = Path(tempfile.mkdtemp(prefix="ucluster-bench-conv-"))
    try:
        src = work / "tiled.h5"
        make_tiled_file(src, args.jets, args.h5 or simulate_base(work / "base.h5", 134))
        raw_read(src)  # warm the page cache so both sides read from memory
        raw = min(raw_read(src) for _ in range(args.repeat))
        local = []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            convert(str(src), work / f"local{i}", progress=False)
            local.append(time.perf_counter() - t0)
        result = {"jets": args.jets, "raw_read_jets_per_s": args.jets / raw,
                  "convert_local_jets_per_s": args.jets / min(local)}
        result["ratio_local_vs_raw"] = result["convert_local_jets_per_s"] / result["raw_read_jets_per_s"]
        if not args.no_spark:
            from ucluster.spark import get_spark

            spark = get_spark("ucluster-bench-conversion", "local[*]")
            spark.sparkContext.setLogLevel("ERROR")
            convert(str(src), work / "spark_warm", spark=spark, progress=False)
            times = []
            for i in range(args.repeat):
                t0 = time.perf_counter()
                convert(str(src), work / f"spark{i}", spark=spark, progress=False)
                times.append(time.perf_counter() - t0)
            result["convert_spark_jets_per_s"] = args.jets / min(times)
            result["spark_cores"] = spark.sparkContext.defaultParallelism
            result["ratio_spark_vs_raw"] = result["convert_spark_jets_per_s"] / result["raw_read_jets_per_s"]
        size = sum(f.stat().st_size for f in (work / "local0").rglob("*.parquet"))
        result["parquet_bytes_per_jet"] = size / args.jets
        result["h5_bytes_per_jet"] = src.stat().st_size / args.jets
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"conversion benchmark: {args.jets} jets, {os.cpu_count()} CPU cores, best of {args.repeat}")
    print(f"  h5py raw read of the same arrays : {result['raw_read_jets_per_s']:>10.0f} jets/s  (limit)")
    print(f"  convert, in-process (threads)    : {result['convert_local_jets_per_s']:>10.0f} jets/s  "
          f"ratio {result['ratio_local_vs_raw']:.2f}")
    if "convert_spark_jets_per_s" in result:
        print(f"  convert, Spark local[{result['spark_cores']}]          : "
              f"{result['convert_spark_jets_per_s']:>10.0f} jets/s  ratio {result['ratio_spark_vs_raw']:.2f}")
    print(f"  size: {result['h5_bytes_per_jet']:.0f} B/jet HDF5 -> {result['parquet_bytes_per_jet']:.0f} B/jet Parquet")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
