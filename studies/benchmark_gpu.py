"""GPU benchmark: the project's model code on one GPU with KERAS_BACKEND=jax, fed from Parquet by the project's loader.

    KERAS_BACKEND=jax python -m studies.benchmark_gpu --data <small parquet dataset> --jets 630000 --json out.json

The small dataset (real Pythia jets converted by conversion/) is tiled into a Parquet dataset of --jets training
jets (630 000 = the hls4ml training set), then it measures: the training step alone on batches already in
memory, the loader alone, and one full epoch read from Parquet end to end (loader + step, overlapped by the
prefetch threads). No TensorFlow is needed: model, losses and the JAX step are backend-agnostic Keras 3.
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


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a small converted dataset to tile")
    p.add_argument("--jets", type=int, default=630_000)
    p.add_argument("--config", default=str(REPO / "conf" / "ucluster.yaml"))
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=100, help="steps for the in-memory step timing")
    p.add_argument("--json", default=None)
    p.add_argument("--set", nargs="*", default=[], help="config overrides section.field=value")
    args = p.parse_args(argv)

    import jax
    import keras
    import numpy as np

    from ucluster.config import load_config
    from ucluster.data.loader import JetStream, prefetch
    from ucluster.model import build_model
    from ucluster.train.engines.jax_local import init_state, make_train_step
    from ucluster.train.loop import n_classes

    work = Path(tempfile.mkdtemp(prefix="ucluster-gpu-"))
    try:
        t0 = time.perf_counter()
        data = tile_dataset(Path(args.data), work / "tiled", args.jets)
        tile_s = time.perf_counter() - t0
        overrides = {"data.path": str(data), "train.batch_size": args.batch, "data.mass_max": 1.0e4,
                     "data.classes": "g,q,w,z,t"}
        overrides.update(dict(kv.split("=", 1) for kv in args.set))
        cfg = load_config(args.config, overrides)
        stream = JetStream(cfg, "train")
        B = cfg.train.batch_size
        steps = stream.selected_rows() // B
        model = build_model(cfg.model, cfg.data.max_particles, stream.meta.n_features, n_classes(cfg))
        optimizer = keras.optimizers.Adam(learning_rate=cfg.train.lr)
        optimizer.build(model.trainable_variables)
        step = make_train_step(model, optimizer, cfg.train.beta, cfg.train.gamma)
        state = init_state(model, optimizer)

        def to_device(batch: dict) -> dict:
            return {k: jax.device_put(batch[k]) for k in ("features", "mask", "target")}

        # (1) the training step alone, on batches already on the device
        cached = [to_device(b) for b, _ in zip(stream.batches(B, 8, epoch=0), range(8), strict=False)]
        t0 = time.perf_counter()
        state, metrics = step(state, cached[0], 1.0)
        jax.block_until_ready(metrics)
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(args.steps):
            state, metrics = step(state, cached[i % len(cached)], 1.0)
        jax.block_until_ready(metrics)
        step_jets_per_s = args.steps * B / (time.perf_counter() - t0)

        # (2) the loader alone, a full epoch of ready batches
        t0 = time.perf_counter()
        n = sum(1 for _ in prefetch(stream.batches(B, steps, epoch=1, seed=1)))
        loader_jets_per_s = n * B / (time.perf_counter() - t0)

        # (3) one epoch end to end: Parquet -> loader -> device -> step
        t0 = time.perf_counter()
        for batch in prefetch(stream.batches(B, steps, epoch=2, seed=1)):
            state, metrics = step(state, to_device(batch), 3.0)
        jax.block_until_ready(metrics)
        epoch_s = time.perf_counter() - t0
        loss = float(np.asarray(metrics)[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    dev = jax.devices()[0]
    result = {
        "device": f"{getattr(dev, 'device_kind', dev.platform)}",
        "backend": keras.backend.backend(), "jax": jax.__version__, "keras": keras.__version__,
        "batch": B, "particles": cfg.data.max_particles, "k": cfg.model.k, "latent_dim": cfg.model.latent_dim,
        "params": int(model.count_params()), "compile_seconds": compile_s,
        "train_jets_per_s": step_jets_per_s, "loader_jets_per_s": loader_jets_per_s,
        "epoch_jets": steps * B, "epoch_seconds": epoch_s, "epoch_jets_per_s": steps * B / epoch_s,
        "final_loss": loss, "tile_seconds": tile_s, "cpu_cores": os.cpu_count(),
        "command": "KERAS_BACKEND=jax python -m studies.benchmark_gpu " + " ".join(argv or sys.argv[1:]),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
