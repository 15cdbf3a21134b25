"""GPU benchmark: the project's JAX engine on 1..N local GPUs, fed from Parquet by the project's loader.

    KERAS_BACKEND=jax python -m studies.benchmark_gpu --data <small parquet dataset> --jets 630000 \
        --devices 1,2 --readers 8,15 --cache --json out.json

The small dataset (real Pythia jets converted by conversion/) is tiled into a Parquet dataset of --jets training
jets (630 000 = the hls4ml training set). For each device count (``--devices``, data-parallel through
:class:`ucluster.train.engines.jax_local.JaxLocalEngine`, ``--batch`` jets per device) it measures: the training
step alone on batches already on the devices; the loader alone; the loader with the copy to the devices but no
step (the most an epoch can reach with this feed); one full epoch read from Parquet the way the training loop
runs it (batches put on the devices in the prefetch thread), for each ``--readers`` count; the same epoch with
the host-to-device copy left in the step's thread (the loop before this change); and with ``--cache`` an epoch
from the decoded in-memory shard (``data.cache``). Ratios are within this one run: epoch rate / step rate, and
N devices / 1 device. No TensorFlow is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def tile_dataset(src: Path, dst: Path, n_jets: int, rows_per_file: int = 65536, row_group_size: int = 4096) -> Path:
    """Repeat the train split of ``src`` into ``dst`` until it holds ``n_jets`` training jets (test split copied)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ucluster.data import schema as S

    meta = S.read_meta(src)
    train = pa.concat_tables([pq.read_table(p) for p in S.split_files(src, "train")])
    reps = -(-n_jets // train.num_rows)
    table = pa.concat_tables([train] * reps).slice(0, n_jets)
    (dst / "split=train").mkdir(parents=True)
    for i, start in enumerate(range(0, n_jets, rows_per_file)):
        pq.write_table(table.slice(start, rows_per_file), dst / "split=train" / f"part-{i:05d}.parquet",
                       row_group_size=row_group_size, compression="snappy")
    shutil.copytree(src / "split=test", dst / "split=test")
    meta.counts = {"train": {"tiled": n_jets}}
    (dst / S.META_FILE).write_text(meta.to_json())
    return dst


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def measure(cfg, data: Path, n_devices: int, readers: list[int], step_steps: int, cache: bool) -> dict:
    """Figures of one device count (a fresh model, engine and compiled step)."""
    import dataclasses

    import jax
    import keras
    import numpy as np

    from ucluster.data.loader import JetStream, prefetch
    from ucluster.model import build_model
    from ucluster.train.engines.jax_local import JaxLocalEngine
    from ucluster.train.loop import n_classes

    def stream_with(threads: int, cached: bool = False) -> JetStream:
        d = dataclasses.replace(cfg.data, reader_threads=threads, cache=cached)
        return JetStream(dataclasses.replace(cfg, data=d), "train")

    stream = stream_with(readers[0])
    engine = JaxLocalEngine(n_devices)
    B = cfg.train.batch_size * engine.replicas  # the global batch: batch_size per device
    steps = stream.selected_rows() // B
    keras.utils.set_random_seed(0)
    model = build_model(cfg.model, cfg.data.max_particles, stream.meta.n_features, n_classes(cfg))
    optimizer = keras.optimizers.Adam(learning_rate=cfg.train.lr)
    optimizer.build(model.trainable_variables)
    engine.setup(model, optimizer, cfg.train.gamma, None)
    engine.set_lr(cfg.train.lr * engine.replicas)
    beta = cfg.train.beta

    def epoch(batches, put: bool) -> float:
        t0 = time.perf_counter()
        out = None
        for batch in prefetch(map(engine.put, batches) if put else batches):
            out = engine.step(batch, 3.0, beta)
        jax.block_until_ready(out)
        return steps * B / (time.perf_counter() - t0)

    # (1) the training step alone, on batches already on the devices
    ready = [engine.put(b) for b in stream.batches(B, 8, epoch=0)]
    t0 = time.perf_counter()
    jax.block_until_ready(engine.step(ready[0], 1.0, beta))
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(engine.step(ready[1], 1.0, beta))  # warm: a second compile would show here
    t0 = time.perf_counter()
    for i in range(step_steps):
        out = engine.step(ready[i % len(ready)], 1.0, beta)
    jax.block_until_ready(out)
    step_rate = step_steps * B / (time.perf_counter() - t0)

    # (2) the loader alone, a full epoch of ready host batches
    t0 = time.perf_counter()
    n = sum(1 for _ in prefetch(stream.batches(B, steps, epoch=1, seed=1)))
    loader_rate = n * B / (time.perf_counter() - t0)

    # (2b) the loader plus the copy to the devices, no step: the most an epoch can reach with this feed
    t0 = time.perf_counter()
    fed = None
    for batch in prefetch(map(engine.put, stream.batches(B, steps, epoch=1, seed=1))):
        fed = batch  # keep only the newest, as the step would
    jax.block_until_ready(fed)
    feed_rate = steps * B / (time.perf_counter() - t0)

    # (3) epochs from Parquet end to end: host -> device copy in the step's thread, then in the prefetch thread
    result = {"devices": engine.replicas, "device": str(getattr(jax.local_devices()[0], "device_kind", "?")),
              "global_batch": B, "epoch_jets": steps * B, "compile_seconds": compile_s,
              "step_jets_per_s": step_rate, "loader_jets_per_s": loader_rate,
              "loader_to_device_jets_per_s": feed_rate}
    result["epoch_host_put_jets_per_s"] = epoch(stream.batches(B, steps, epoch=2, seed=1), put=False)
    for threads in readers:
        rate = epoch(stream_with(threads).batches(B, steps, epoch=3, seed=1), put=True)
        result[f"epoch_readers{threads}_jets_per_s"] = rate
    best = max(readers, key=lambda t: result[f"epoch_readers{t}_jets_per_s"])
    result["best_readers"] = best
    result["epoch_jets_per_s"] = result[f"epoch_readers{best}_jets_per_s"]
    result["epoch_seconds"] = steps * B / result["epoch_jets_per_s"]
    result["epoch_over_step"] = result["epoch_jets_per_s"] / step_rate
    if cache:  # the first epoch fills the cache (from Parquet), the second reads only memory
        cached = stream_with(best, cached=True)
        result["epoch_cache_fill_jets_per_s"] = epoch(cached.batches(B, steps, epoch=4, seed=1), put=True)
        result["epoch_cached_jets_per_s"] = epoch(cached.batches(B, steps, epoch=5, seed=1), put=True)
        result["epoch_cached_over_step"] = result["epoch_cached_jets_per_s"] / step_rate
    result["final_loss"] = float(np.asarray(out)[0])
    result["params"] = int(model.count_params())
    return result


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a small converted dataset to tile")
    p.add_argument("--jets", type=int, default=630_000)
    p.add_argument("--config", default=str(REPO / "conf" / "ucluster.yaml"))
    p.add_argument("--batch", type=int, default=1024, help="jets per device (the paper's 1024)")
    p.add_argument("--devices", default="1", help="device counts to measure, e.g. 1,2 (0 = all local devices)")
    p.add_argument("--readers", default="8", help="data.reader_threads values to measure, e.g. 8,15")
    p.add_argument("--cache", action="store_true", help="also measure an epoch from the decoded in-memory shard")
    p.add_argument("--steps", type=int, default=100, help="steps for the in-memory step timing")
    p.add_argument("--json", default=None)
    p.add_argument("--set", nargs="*", default=[], help="config overrides section.field=value")
    args = p.parse_args(argv)

    import jax
    import keras

    from ucluster.config import load_config

    work = Path(tempfile.mkdtemp(prefix="ucluster-gpu-"))
    try:
        t0 = time.perf_counter()
        data = tile_dataset(Path(args.data), work / "tiled", args.jets)
        tile_s = time.perf_counter() - t0
        overrides = {"data.path": str(data), "train.batch_size": args.batch, "data.mass_max": 1.0e4,
                     "data.classes": "g,q,w,z,t"}
        overrides.update(dict(kv.split("=", 1) for kv in args.set))
        cfg = load_config(args.config, overrides)
        readers = _ints(args.readers)
        runs = [measure(cfg, data, n, readers, args.steps, args.cache) for n in _ints(args.devices)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"backend": keras.backend.backend(), "jax": jax.__version__, "keras": keras.__version__,
              "batch_per_device": args.batch, "particles": cfg.data.max_particles, "k": cfg.model.k,
              "latent_dim": cfg.model.latent_dim, "tile_seconds": tile_s, "cpu_cores": os.cpu_count(),
              "local_devices": len(jax.local_devices()), "runs": runs,
              "command": "KERAS_BACKEND=jax python -m studies.benchmark_gpu " + " ".join(argv or sys.argv[1:])}
    one = next((r for r in runs if r["devices"] == 1), None)
    for r in runs:
        if one is not None and r["devices"] > 1:  # target: >= 0.9 x N of one device
            r["scaling_vs_1"] = r["epoch_jets_per_s"] / one["epoch_jets_per_s"]
            r["scaling_efficiency"] = r["scaling_vs_1"] / r["devices"]
    print(json.dumps(result, indent=2))
    for r in runs:
        line = (f"{r['devices']} device(s): step {r['step_jets_per_s']:,.0f} jets/s, loader "
                f"{r['loader_jets_per_s']:,.0f}, epoch from Parquet {r['epoch_seconds']:.2f} s = "
                f"{r['epoch_jets_per_s']:,.0f} jets/s ({r['epoch_over_step']:.2f} of the step; copy in the step's "
                f"thread: {r['epoch_host_put_jets_per_s']:,.0f})")
        if "scaling_vs_1" in r:
            line += f", {r['scaling_vs_1']:.2f}x one device ({r['scaling_efficiency']:.2f} of {r['devices']}x)"
        print(line, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
