"""`make bench`: every performance figure of the project, measured side by side in one run.

    python -m studies.benchmark [--out docs] [--quick]

    python -m studies.benchmark engines [--jets X] [--json PATH]   # only (2)

Measures on this machine: (1) the Parquet loader's throughput next to the training step's consumption on the
same batches, (2) scaling of both distributed engines (Horovod, tf_distribute) on 1 and 2 workers at a fixed
per-worker batch, same model and data, (3) the peak RSS of a training worker for a dataset of X and 10X jets,
(4) conversion (and assignment, when its benchmark exists) throughput; and (5) copies in the GPU figures
measured with `studies/benchmark_gpu.py` on the device machine (docs/benchmarks_gpu.json). Prints one table
and writes docs/benchmarks.json and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent


def build_dataset(work: Path, n_jets: int, base_h5: Path) -> Path:
    from conversion.convert import convert
    from studies.benchmark_conversion import make_tiled_file

    h5 = work / f"tiled_{n_jets}.h5"
    make_tiled_file(h5, n_jets, str(base_h5))
    out = work / f"jets_{n_jets}.parquet"
    convert(str(h5), out, progress=False, row_group_size=512)  # fine row groups: balanced 2-worker shards
    h5.unlink()
    return out


def bench_loader_vs_step(cfg, n_batches: int) -> dict:
    """Jets/s the loader delivers as ready batches vs jets/s one training step consumes (same batches)."""
    import keras
    import tensorflow as tf

    from ucluster.data.loader import JetStream, prefetch
    from ucluster.model import build_model
    from ucluster.train.engines.horovod_tf import StepFunctions
    from ucluster.train.loop import n_classes

    tf.config.threading.set_intra_op_parallelism_threads(os.cpu_count() or 1)
    stream = JetStream(cfg, "train")
    B = cfg.train.batch_size
    # The loader over a whole epoch (its shuffle buffer fills before the first batch, as in training, so a
    # few batches would time the fill rather than the throughput); the step over the first n_batches of it.
    epoch_steps = stream.selected_rows() // B
    steps = min(n_batches, epoch_steps)
    list(prefetch(stream.batches(B, epoch_steps, epoch=0)))  # warm the page cache
    t0 = time.perf_counter()
    batches = list(prefetch(stream.batches(B, epoch_steps, epoch=1)))
    loader_s = time.perf_counter() - t0
    loader_jets = epoch_steps * B
    batches = batches[:steps]
    model = build_model(cfg.model, cfg.data.max_particles, stream.meta.n_features, n_classes(cfg))
    opt = keras.optimizers.Adam(1e-3)
    opt.build(model.trainable_variables)
    fns = StepFunctions(model, opt, cfg.train.gamma)
    fns.train(batches[0], 1.0, cfg.train.beta)  # trace and compile
    t0 = time.perf_counter()
    for b in batches:
        fns.train(b, 1.0, cfg.train.beta)
    step_s = time.perf_counter() - t0
    jets = steps * B
    loader_rate, step_rate = loader_jets / loader_s, jets / step_s
    return {"batch": B, "batches": steps, "loader_batches": epoch_steps, "loader_jets_per_s": loader_rate,
            "train_step_jets_per_s": step_rate, "loader_over_step": loader_rate / step_rate}


def _train(cfg, **changes) -> dict:
    from ucluster.train.trainer import train

    sections = {}
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        sections.setdefault(section, {})[key] = value
    for section, values in sections.items():
        cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **values)})
    return train(cfg)


def bench_scaling(cfg, out: Path, engine: str = "horovod") -> dict:
    """Training jets/s of ``engine`` for 1 and 2 workers at the same per-worker batch, one core per worker
    (same model, data and config for every engine)."""
    common = {"train.epochs": 2, "train.pretrain_epochs": 2, "run.threads_per_worker": 1, "run.progress": False,
              "run.engine": engine}
    one = _train(cfg, **common, **{"run.np": -1, "run.output_dir": str(out / f"{engine}_scale1")})
    two = _train(cfg, **common, **{"run.np": -2, "run.output_dir": str(out / f"{engine}_scale2")})
    both_cores = _train(cfg, **{**common, "run.threads_per_worker": 0},
                        **{"run.np": -1, "run.output_dir": str(out / f"{engine}_scale1all")})
    return {"engine": engine, "per_worker_batch": cfg.train.batch_size, "one_worker_jets_per_s": one["jets_per_s"],
            "two_workers_jets_per_s": two["jets_per_s"],
            "scaling_efficiency": two["jets_per_s"] / (2 * one["jets_per_s"]),
            "one_worker_all_cores_jets_per_s": both_cores["jets_per_s"]}


ENGINES = ("horovod", "tf_distribute")


def scaling_rows(results: dict) -> list[str]:
    """Table rows of the engine x workers scaling figures (``scaling`` is Horovod's, as before)."""
    rows = []
    for engine in ENGINES:
        sc = results.get("scaling" if engine == "horovod" else f"scaling_{engine}")
        if not sc:
            continue
        rows += [
            f"| {engine}, 1 worker (1 core), batch {sc['per_worker_batch']} | {sc['one_worker_jets_per_s']:,.0f} "
            "jets/s | |",
            f"| {engine}, 2 workers (1 core each) | {sc['two_workers_jets_per_s']:,.0f} jets/s | |",
            f"| {engine}, scaling efficiency 2 vs 1 | {sc['scaling_efficiency']:.2f} | >= 0.9 |",
            f"| {engine}, 1 worker using both cores | {sc['one_worker_all_cores_jets_per_s']:,.0f} jets/s | |",
        ]
    if results.get("scaling") and results.get("scaling_tf_distribute"):
        h, t = results["scaling"], results["scaling_tf_distribute"]
        rows.append(f"| tf_distribute / horovod, 2 workers | "
                    f"{t['two_workers_jets_per_s'] / h['two_workers_jets_per_s']:.2f} | |")
    return rows


def bench_memory(cfg, small: Path, large: Path, out: Path) -> dict:
    """Peak RSS of a training worker streaming a dataset of X and of 10X jets (one full epoch each)."""
    common = {"train.epochs": 1, "train.pretrain_epochs": 1, "run.progress": False, "run.np": -1,
              "train.kmeans_sample": 2000}
    a = _train(cfg, **common, **{"data.path": str(small), "run.output_dir": str(out / "mem_small")})
    b = _train(cfg, **common, **{"data.path": str(large), "run.output_dir": str(out / "mem_large")})
    from ucluster.data import schema as S

    n_small = sum(S.read_meta(small).counts["train"].values())
    n_large = sum(S.read_meta(large).counts["train"].values())
    return {"train_jets_X": n_small, "train_jets_10X": n_large, "peak_rss_mb_X": a["worker_peak_rss_mb"],
            "peak_rss_mb_10X": b["worker_peak_rss_mb"],
            "rss_growth": b["worker_peak_rss_mb"] / a["worker_peak_rss_mb"] - 1}


def bench_engines(large: Path, work: Path) -> dict:
    """The scaling figures of every engine, on the paper's per-worker batch (1024) and the 10X dataset
    (enough steps per epoch for 2 workers)."""
    from ucluster.config import load_config

    cfg = load_config(REPO / "conf" / "demo.yaml", {"data.path": str(large), "train.batch_size": 1024,
                                                     "train.kmeans_sample": 2000, "run.progress": False})
    out = {}
    for engine in ENGINES:
        print(f"    {engine} ...", flush=True)
        out["scaling" if engine == "horovod" else f"scaling_{engine}"] = bench_scaling(cfg, work, engine)
    return out


def main_engines(argv: list[str] | None = None) -> dict:
    """``python -m studies.benchmark engines [--jets X] [--json PATH]``: only the engine x workers figures."""
    p = argparse.ArgumentParser()
    p.add_argument("--jets", type=int, default=8000, help="the scaling dataset holds 10X jets")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    from studies import benchmark_conversion

    work = Path(tempfile.mkdtemp(prefix="ucluster-bench-"))
    try:
        base = benchmark_conversion.simulate_base(work / "base.h5", 200, seeds=(31, 32, 33))
        results = bench_engines(build_dataset(work, 10 * args.jets, base), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["jets"] = 10 * args.jets
    print("\n".join(scaling_rows(results)))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


KEEP_MARKER = "<!-- make bench keeps everything below this line: measurements recorded by hand -->"


def kept_sections(path: Path) -> str:
    """The hand-recorded part of an existing benchmarks.md (from :data:`KEEP_MARKER` on), which a new
    ``make bench`` must not erase; empty if there is none."""
    if not path.is_file():
        return ""
    text = path.read_text()
    at = text.find(KEEP_MARKER)
    return "" if at < 0 else "\n" + text[at:]


def write_markdown(path: Path, generated: str) -> None:
    """Write the generated tables, followed by the hand-recorded sections the file already had (atomically)."""
    from ucluster.atomic import atomic_write_bytes

    atomic_write_bytes(path, (generated.rstrip("\n") + "\n" + kept_sections(path)).encode())


def render_markdown(results: dict) -> str:
    r = results
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` (`python -m studies.benchmark`) on {r['machine']}, {r['date']}. Ratios compare",
        "figures measured in the same run. The machine is shared, so absolute numbers vary from run to run.",
        "",
        "| what | figure | target |",
        "|---|---|---|",
    ]
    lo = r["loader"]
    lines.append(f"| loader, ready batches of {lo['batch']} (demo config) | {lo['loader_jets_per_s']:,.0f} jets/s | |")
    lines.append(f"| training step, same batches | {lo['train_step_jets_per_s']:,.0f} jets/s | |")
    lines.append(f"| loader / training step | {lo['loader_over_step']:.1f}x | >= 5x |")
    if "loader_default_model" in r:
        ld = r["loader_default_model"]
        lines.append(f"| loader / training step, default (paper) model, batch {ld['batch']} | "
                     f"{ld['loader_over_step']:.1f}x ({ld['train_step_jets_per_s']:,.0f} jets/s step) | >= 5x |")
    lines += scaling_rows(r)
    me = r["memory"]
    lines += [
        f"| peak RSS of a worker, {me['train_jets_X']:,} training jets (X) | {me['peak_rss_mb_X']} MB | |",
        f"| peak RSS of a worker, {me['train_jets_10X']:,} training jets (10X) | {me['peak_rss_mb_10X']} MB | |",
        f"| RSS growth X -> 10X | {100 * me['rss_growth']:+.1f} % | within 10 % |",
    ]
    cv = r["conversion"]
    lines += [
        f"| h5py raw read of the arrays | {cv['raw_read_jets_per_s']:,.0f} jets/s | |",
        f"| conversion, in-process (3 threads) | {cv['convert_local_jets_per_s']:,.0f} jets/s "
        f"({cv['ratio_local_vs_raw']:.2f} of raw) | |",
    ]
    if "convert_spark_jets_per_s" in cv:
        lines.append(f"| conversion, Spark local[{cv['spark_cores']}] | {cv['convert_spark_jets_per_s']:,.0f} jets/s "
                     f"({cv['ratio_spark_vs_raw']:.2f} of raw) | >= 0.5 of raw |")
    if "assignment" in r:
        a = r["assignment"]
        lines += [
            f"| training, demo model, best clustering epoch | {a['train_jets_per_s']:,.0f} jets/s | |",
            f"| assignment on Spark ({a['task_slots']} slots, warm) | {a['assign_jets_per_s']:,.0f} jets/s "
            f"({a['ratio']:.2f} of the bare forward pass; mlflow spark_udf {a['spark_udf_jets_per_s']:,.0f} jets/s, "
            f"{a['ratio_spark_udf']:.2f}) | >= 0.8 of the forward pass |",
            f"| forward pass alone, one process | {a['forward_only_jets_per_s']:,.0f} jets/s | |",
        ]
    if "assignment_default" in r:
        a = r["assignment_default"]
        lines += [
            f"| assignment on Spark, default (paper-size) model ({a['task_slots']} slots, warm) | "
            f"{a['assign_jets_per_s']:,.0f} jets/s ({a['ratio']:.2f} of its bare forward pass, "
            f"{a['forward_only_jets_per_s']:,.0f} jets/s; mlflow spark_udf {a['ratio_spark_udf']:.2f}) | "
            f">= 0.8 of the forward pass |",
        ]
    if "gpu" in r:
        g = r["gpu"]
        lines += [
            f"| GPU ({g['device']}), training step, JAX | {g['train_jets_per_s']:,.0f} jets/s | |",
            f"| GPU, epoch of {g['epoch_jets']:,} jets from Parquet | {g['epoch_seconds']:.1f} s | <= 5 s |",
        ]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in r.get("notes", [])]
    if "gpu" in r:
        lines += ["", "GPU command: `" + r["gpu"].get("command", "") + "`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "docs"))
    p.add_argument("--jets", type=int, default=8000, help="X: jets of the small dataset (10X for the large)")
    p.add_argument("--skip-default-model", action="store_true")
    args = p.parse_args(argv)

    from studies import benchmark_conversion
    from ucluster.config import load_config

    work = Path(tempfile.mkdtemp(prefix="ucluster-bench-"))
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d")}
    try:
        print("simulating the base sample and building datasets of X and 10X jets ...", flush=True)
        base = benchmark_conversion.simulate_base(work / "base.h5", 200, seeds=(31, 32, 33))
        print("(0) conversion ...", flush=True)
        # First, and in its own process, as a conversion job runs: after the trainings below, even in a
        # subprocess, the Spark figure came out 0.43-0.44 of the raw read where a fresh run gave 0.51-0.73.
        conv_json = work / "conversion.json"
        subprocess.run([sys.executable, "-m", "studies.benchmark_conversion", "--h5", str(base), "--repeat", "5",
                        "--json", str(conv_json)], check=True, cwd=REPO)
        results["conversion"] = json.loads(conv_json.read_text())
        small = build_dataset(work, args.jets, base)
        large = build_dataset(work, 10 * args.jets, base)
        demo = load_config(REPO / "conf" / "demo.yaml", {"data.path": str(small), "run.progress": False})
        print("(1) loader vs training step ...", flush=True)
        results["loader"] = bench_loader_vs_step(demo, 30)
        if not args.skip_default_model:
            default = load_config(None, {"data.path": str(large), "train.batch_size": 256})
            results["loader_default_model"] = bench_loader_vs_step(default, 4)
        print("(2) scaling 1 -> 2 workers, both engines ...", flush=True)
        results.update(bench_engines(large, work))
        print("(3) memory ...", flush=True)
        tiny = load_config(REPO / "conf" / "demo.yaml", {
            "data.max_particles": 30, "model.k": 8, "model.point_channels": "16,16", "model.latent_dim": 16,
            "model.head_units": "16", "train.batch_size": 256, "run.progress": False,
            "data.shuffle_buffer": 4096})  # below X: the check is that memory stops growing once the buffer is full
        results["memory"] = bench_memory(tiny, small, large, work)
        print("(4b) assignment vs the bare forward pass ...", flush=True)
        from studies import benchmark_assign

        assign_json = work / "assign.json"
        # 20 copies of the train split: over 4 copies of a 3k-jet sample (~10k jets) the job's fixed cost (task start,
        # Parquet commit, record) weighed on a 1.5 s warm run and the ratio measured that, not the per-jet throughput
        benchmark_assign.main(["--data", str(small), "--replicate", "20", "--repeat", "4",
                               "--workdir", str(work / "assign"), "--json", str(assign_json)])
        results["assignment"] = json.loads(assign_json.read_text())
        print("(4c) the same with the default (paper-size) model ...", flush=True)
        default_json = work / "assign_default.json"
        benchmark_assign.main(["--data", str(small), "--config", str(REPO / "conf" / "ucluster.yaml"), "--epochs", "2",
                               "--replicate", "4", "--repeat", "4", "--workdir", str(work / "assign_default"),
                               "--json", str(default_json)])
        results["assignment_default"] = json.loads(default_json.read_text())
        gpu_json = Path(args.out) / "benchmarks_gpu.json"
        if gpu_json.exists():
            results["gpu"] = json.loads(gpu_json.read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["notes"] = [
        "Scaling is measured with one TensorFlow thread per worker (one Spark task slot each) at the paper's "
        "per-worker batch of 1024, demo model. Two independent single-thread training processes on this machine "
        "reached 0.98 of twice one (measured 2026-11-26: 2073 + 2049 vs 2099 jets/s), so the cores themselves "
        "scale; what two Horovod workers lose goes to the per-step gradient allreduce (Gloo over loopback) and to "
        "the loader and Horovod threads, which have no spare core on a 2-core machine. Here one worker using both "
        "cores is the faster choice; the 2-worker figure is what a 2-slot Spark cluster would get.",
        "Engines: both run the same loop, model, data and per-worker batch; they differ in the gradient "
        "all-reduce (Horovod: Gloo; tf_distribute: MultiWorkerMirroredStrategy's gRPC ring) and in the launcher.",
        "Memory: each worker holds one shuffle buffer (data.shuffle_buffer jets) plus one row group, whatever the "
        "dataset size.",
        "Conversion: a file of 100k jets (a 600-jet Pythia sample tiled), best of 5, in a process of its own. On "
        "this shared machine single runs of `python -m studies.benchmark_conversion` gave 0.51-0.68 (in-process) "
        "and 0.51-0.72 (Spark local[2]) of the raw read on 2026-11-26. Per 100k jets the work is about 0.16 s of "
        "reading, 0.23-0.35 s of feature computation and 0.25 s of Parquet encoding and writing, overlapped in "
        "three threads per task. Spark's fixed cost per task (~35 ms) is why tasks hold up to 65536 jets.",
        "Loader vs step: the loader is timed over a whole epoch, because its shuffle buffer fills before the first "
        "batch, as in training.",
    ]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")
    md = render_markdown(results)
    write_markdown(Path(args.out) / "benchmarks.md", md)
    print()
    print(md)
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["engines"]:
        main_engines(sys.argv[2:])
    else:
        main()
