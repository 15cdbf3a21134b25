"""The clustering-quality study of the default (paper-size) network on one GPU, with ``KERAS_BACKEND=jax``.

The paper-size network trains at about 400 jets/s on a 2-core CPU (100 epochs of 90k jets: days); on one GPU the
project's JAX path runs it in minutes. GPU machines here have JAX but no TensorFlow, no internet, and take at
most 64 MiB of files per call, so the study has three steps:

    python -m studies.quality_gpu pack --data runs/big/jets.parquet --out .gpudata       # here: float16 parts
    python -m studies.quality_gpu unpack --packed .gpudata --out /tmp/jets.parquet       # there: a dataset again
    KERAS_BACKEND=jax python -m studies.quality_gpu run --data /tmp/jets.parquet --seeds 1,2,3 --json q.json

``pack`` keeps the selected jets (data.classes, the mass window) of the train, test and val splits, their real
particles only, with the features rounded to float16 (relative precision 5e-4; the jet mass, pT and labels stay
float32/exact), in parts of at most ``--part-mb`` MB that travel one per call. ``run`` measures on that dataset,
like ``studies/quality_study.py``: the mass-only k-means floor, the best mass cuts, the supervised network
(``model.target=truth``) and UCluster with every seed, all through the one training loop
(:func:`ucluster.train.loop.run`) with the single-device JAX engine; it prints the
same table and writes the figures, each run's per-epoch history included, as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ucluster.config import ConfigError, add_config_arguments, load_config, overrides_from_args  # noqa: E402

PACK_SPLITS = ("train", "test", "val")
SMALL = ("jet_key", "label", "n_particles", "jet_pt", "jet_eta", "jet_mass")
# Features that follow from others and the jet's (pT, eta, m): not packed, recomputed by unpack. What travels
# is then (deta, dphi, log_pt, log_e): half the bytes, so a 30k-per-class sample fits one 64 MiB transfer.
DERIVED = ("log_ptrel", "log_erel", "delta_r", "costheta_rel")
# Largest difference allowed between a recomputed feature and the converter's (float16 inputs, float32 maths).
DERIVED_TOLERANCE = 2e-2


def derive_features(stored: dict[str, np.ndarray], jet: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The :data:`DERIVED` features of real particles from the packed ones and the per-particle jet (pT, eta,
    mass): log(pT/pT_jet), log(E/E_jet) with E_jet from (pT, eta, m), Delta R, and cos of the 3-d angle to the
    jet axis (directions from pseudorapidities, exact for the converter's definition)."""
    deta, dphi = stored["deta"].astype(np.float64), stored["dphi"].astype(np.float64)
    pt, eta_j, m = (jet[k].astype(np.float64) for k in ("jet_pt", "jet_eta", "jet_mass"))
    e_jet = np.sqrt(m * m + (pt * np.cosh(eta_j)) ** 2)
    eta = eta_j + deta
    cos_theta = (np.cos(dphi) + np.sinh(eta) * np.sinh(eta_j)) / (np.cosh(eta) * np.cosh(eta_j))
    return {"log_ptrel": stored["log_pt"] - np.log(pt), "log_erel": stored["log_e"] - np.log(e_jet),
            "delta_r": np.hypot(deta, dphi), "costheta_rel": np.minimum(cos_theta, 1.0)}


def _packed_features(names: list[str]) -> list[str]:
    return [n for n in names if n not in DERIVED]


def pack(data: str, out: Path, classes: list[str], mass_min: float, mass_max: float, part_mb: float,
         max_particles: int = 0) -> list[Path]:
    """Selected jets of ``data`` as float16 ragged parts ``out/part-NN/<split>.npz`` plus the dataset metadata:
    the leading ``max_particles`` (0 = all) of each jet, the :data:`DERIVED` features left out (checked to be
    recomputable within :data:`DERIVED_TOLERANCE`)."""
    import pyarrow.parquet as pq

    from ucluster.data import schema as S

    meta = S.read_meta(data)
    names = list(meta.feature_names)
    keep = [names.index(n) for n in _packed_features(names)]
    source_particles = meta.n_particles
    if max_particles and max_particles < meta.n_particles:
        meta.n_particles = max_particles
        meta.params = {**meta.params, "packed_max_particles": max_particles}
    small = [c for c in S.arrow_schema(meta).names if c not in (S.FEATURES, S.SOURCE_FILE, S.SOURCE_ROW)]
    small += [c for c in pq.read_schema(S.split_files(data, "train")[0]).names if c.startswith("jet_")
              and c not in small]  # optional jet columns (substructure) travel too
    ids = [meta.class_names.index(c) for c in classes]
    budget = part_mb * 1e6
    parts: list[Path] = []
    part: dict[str, dict[str, list]] = {}
    size = 0.0

    def flush() -> None:
        nonlocal part, size
        if not part:
            return
        folder = out / f"part-{len(parts):02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for split, cols in part.items():
            arrays = {k: np.concatenate(v) for k, v in cols.items()}
            tmp = folder / f".{split}.tmp.npz"
            np.savez_compressed(tmp, **arrays)  # the transfer is size-limited: zlib saves ~10-20 %
            tmp.rename(folder / f"{split}.npz")
        (folder / S.META_FILE).write_text(meta.to_json())
        parts.append(folder)
        part, size = {}, 0.0

    for split in PACK_SPLITS:
        for path in S.split_files(data, split):
            f = pq.ParquetFile(path)
            for g in range(f.num_row_groups):
                t = f.read_row_group(g, columns=[*small, S.FEATURES])
                cols = {c: t.column(c).to_numpy() for c in small}
                sel = np.isin(cols["label"], ids) & (cols["jet_mass"] > mass_min) & (cols["jet_mass"] < mass_max)
                if not sel.any():
                    continue
                feats = S.decode_features(t.column(S.FEATURES), source_particles,
                                          meta.n_features)[sel, :meta.n_particles]
                block = {c: v[sel] for c, v in cols.items()}
                block["n_particles"] = np.minimum(block["n_particles"], meta.n_particles)
                n = block["n_particles"].astype(np.int64)
                real = np.arange(meta.n_particles)[None, :] < n[:, None]
                packed = feats[real][:, keep].astype(np.float16)  # (sum n, F'), jet by jet
                _check_derivable(names, feats[real], packed, {c: np.repeat(block[c], n) for c in SMALL[3:]}, path)
                block["particles"] = packed
                dest = part.setdefault(split, {k: [] for k in block})
                for k, v in block.items():
                    dest[k].append(v)
                size += sum(v.nbytes for v in block.values())
                if size >= budget:
                    flush()
    flush()
    return parts


def _full_features(names: list[str], packed: np.ndarray, jet: dict[str, np.ndarray]) -> np.ndarray:
    """(n, F) float32 features in ``names`` order from the packed (n, F') ones and the per-particle jet values."""
    stored = {n: packed[:, i].astype(np.float32) for i, n in enumerate(_packed_features(names))}
    derived = derive_features(stored, jet) if any(n in DERIVED for n in names) else {}
    return np.stack([stored[n] if n in stored else derived[n] for n in names], axis=1).astype(np.float32)


def _check_derivable(names: list[str], original: np.ndarray, packed: np.ndarray, jet: dict, where) -> None:
    """Refuse to pack a dataset whose derived features do not follow from the packed ones (another converter,
    real detector data...): what arrives must be what was measured on, within the float16 rounding."""
    full = _full_features(names, packed, jet)
    worst = np.abs(full - original).max(axis=0) if len(full) else np.zeros(len(names))
    bad = [f"{n} ({w:.3g})" for n, w in zip(names, worst, strict=True) if w > DERIVED_TOLERANCE]
    if bad:
        raise ValueError(f"{where}: features {', '.join(bad)} cannot be recomputed from the packed ones within "
                         f"{DERIVED_TOLERANCE}; this dataset cannot be packed")


def unpack(packed: Path, out: Path, row_group_size: int = 4096) -> Path:
    """Write the parts under ``packed`` back as a Parquet dataset (features float32, zero-padded to P)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ucluster.data import schema as S

    folders = sorted(p for p in packed.glob("part-*") if (p / S.META_FILE).is_file())
    if not folders:
        raise S.DatasetError(f"{packed}: no packed parts (part-NN/{S.META_FILE})")
    meta = S.DatasetMeta.from_json((folders[0] / S.META_FILE).read_text())
    tmp = out.with_name(out.name + ".tmp")
    counts: dict[str, dict[str, int]] = {}
    for i, folder in enumerate(folders):
        for split in PACK_SPLITS:
            if not (folder / f"{split}.npz").is_file():
                continue
            z = np.load(folder / f"{split}.npz")
            n = z["n_particles"].astype(np.int64)
            feats = np.zeros((len(n), meta.n_particles, meta.n_features), np.float32)
            feats[np.arange(meta.n_particles)[None, :] < n[:, None]] = _full_features(
                meta.feature_names, z["particles"], {c: np.repeat(z[c], n) for c in SMALL[3:]})
            columns = {
                S.JET_KEY: z["jet_key"], S.FEATURES: S.encode_features(feats), S.N_PARTICLES: z["n_particles"],
                S.LABEL: z["label"], S.JET_PT: z["jet_pt"], S.JET_ETA: z["jet_eta"], S.JET_MASS: z["jet_mass"],
                S.SOURCE_FILE: pa.array([folder.name] * len(n)), S.SOURCE_ROW: np.arange(len(n), dtype=np.int64),
            }
            schema = S.arrow_schema(meta)
            for extra in sorted(set(z.files) - set(columns) - {"particles"}):  # optional jet columns
                columns[extra] = z[extra]
                schema = schema.append(pa.field(extra, pa.array(z[extra][:0]).type))
            table = pa.table(columns, schema=schema)
            (tmp / f"split={split}").mkdir(parents=True, exist_ok=True)
            pq.write_table(table, tmp / f"split={split}" / f"part-{i:05d}.parquet", row_group_size=row_group_size)
            for label, count in zip(*np.unique(z["label"], return_counts=True), strict=True):
                name = meta.class_names[int(label)]
                counts.setdefault(split, {}).setdefault(name, 0)
                counts[split][name] += int(count)
    meta.counts = counts
    meta.params = {**meta.params, "packed": "float16 features, derived ones recomputed (studies/quality_gpu.py)"}
    (tmp / S.META_FILE).write_text(meta.to_json())
    tmp.rename(out)
    return out


def simulate(out: str, kinds: str, jets_per_kind: int, seed: int, jets_per_task: int, procs: int,
             max_particles: int = 100) -> list[str]:
    """``jobs/simulate_jets`` without Spark (GPU machines have no JVM): the same tasks, seeds and files, run by a
    pool of ``procs`` processes (one Pythia per task)."""
    from concurrent.futures import ProcessPoolExecutor

    from ucluster.sim import pythia_jets

    tasks = pythia_jets.plan_tasks(kinds, jets_per_kind, seed, jets_per_task)
    with ProcessPoolExecutor(procs) as pool:
        records = list(pool.map(pythia_jets.run_task, tasks, [out] * len(tasks), [max_particles] * len(tasks)))
    failed = [r for r in records if r["error"]]
    for r in failed:
        print(f"task {r['kind']} seed {r['seed']} failed: {r['error']}", file=sys.stderr)
    files = sorted(r["path"] for r in records if r["path"])
    for kind, (n_jets, median) in pythia_jets.summarize_files(files).items():
        print(f"{kind}: {n_jets} jets, median jet mass {median:.1f} GeV", flush=True)
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(tasks)} simulation tasks failed")
    return files


def run(args: argparse.Namespace) -> dict:
    import dataclasses

    from ucluster.train import loop
    from ucluster.train.engines.jax_local import JaxLocalEngine

    base = load_config(args.config, overrides_from_args(args))
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    classes = list(base.data.classes)

    def train(name: str, **changes: dict) -> dict:
        changes.setdefault("run", {})["output_dir"] = str(Path(base.run.output_dir) / name)  # own checkpoints
        cfg = dataclasses.replace(base, **{s: dataclasses.replace(getattr(base, s), **v) for s, v in changes.items()})
        print(f"\n== {name}: seed {cfg.train.seed}, target {cfg.model.target}, {cfg.train.epochs} epochs "
              f"({cfg.train.pretrain_epochs} pretraining), batch {cfg.train.batch_size}", flush=True)
        t0 = time.perf_counter()

        def show(epoch: int, m: dict) -> None:
            extra = (f" cluster {m['test_cluster_acc']:.3f} (val {m.get('val_cluster_acc', float('nan')):.3f})"
                     if "test_cluster_acc" in m else "")
            print(f"  epoch {epoch + 1}: loss {m['loss']:.4f} class {m['test_class_acc']:.3f}{extra} "
                  f"{m['jets_per_s']:.0f} jets/s", flush=True)

        result = loop.run(cfg, JaxLocalEngine(), track=False, on_epoch=show)
        result["seconds"] = time.perf_counter() - t0
        return result

    runs = {}
    if args.skip_baselines:  # a sweep point: UCluster seeds only, against the study's floor and ceiling
        changed = {k: v for k, v in overrides_from_args(args).items() if k not in ("data.path", "data.reader_threads")}
        for s in seeds:
            runs[s] = train(f"ucluster_seed{s}", train={"seed": s})
            r = runs[s]
            print(f"RESULT {' '.join(f'{k}={v}' for k, v in changed.items()) or 'default'} "
                  f"seed {s}: cluster acc {r['test_cluster_acc']:.3f}, last-4 mean "
                  f"{r['last4_mean_test_cluster_acc']:.3f}, init {r['init_test_cluster_acc']:.3f}, NMI "
                  f"{r['test_nmi']:.3f}, ARI {r['test_ari']:.3f}", flush=True)
        report = {"config": base.to_dict(), "ucluster": {str(s): r for s, r in runs.items()}}
    else:
        report = _study(base, seeds, classes, train)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float) + "\n")
    return report


def selected_on_val(history: list[dict], key: str) -> dict:
    """The epoch with the best ``val_<key>`` and its ``test_<key>``: a stopping point chosen without the test
    split (NaN where the history has no val figures)."""
    rows = [h for h in history if f"val_{key}" in h]
    if not rows:
        return {"epoch": math.nan, "val": math.nan, "test": math.nan}
    best = max(rows, key=lambda h: h[f"val_{key}"])
    return {"epoch": best["epoch"], "val": best[f"val_{key}"], "test": best[f"test_{key}"]}


def _epoch_line(run: str, epoch: int, m: dict) -> None:
    """One line per epoch (so that a run stopped part-way still leaves its curve in the log)."""
    keys = ("loss", "test_class_acc", "val_cluster_acc", "test_cluster_acc", "test_nmi", "test_moved_from_init",
            "test_moved_from_prev", "test_moved_from_prev_matched", "live_val_cluster_acc", "live_test_cluster_acc")
    print(f"EPOCH {run} {epoch} " + " ".join(f"{k}={m[k]:.4f}" for k in keys if k in m), flush=True)


def sweep(args: argparse.Namespace) -> dict:
    """Each ``--variant name:section.field=value,...`` over every seed, through the one training loop; one
    table row per run with the last-epoch figures and those of the epoch selected on val."""
    from ucluster.train import loop
    from ucluster.train.engines.jax_local import JaxLocalEngine

    common = overrides_from_args(args)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    rows, runs = [], {}
    for spec in args.variant:
        name, _, body = spec.partition(":")
        changes = dict(kv.split("=", 1) for kv in body.split(";") if kv.strip()) if body else {}
        for seed in seeds:
            out_dir = str(Path(load_config(args.config, common).run.output_dir) / f"{name}_seed{seed}")
            cfg = load_config(args.config, {**common, **changes, "train.seed": seed, "run.output_dir": out_dir,
                                            "run.progress": False})
            t0 = time.perf_counter()
            r = loop.run(cfg, JaxLocalEngine(), track=False, on_epoch=partial(_epoch_line, f"{name}_seed{seed}"))
            h = r["history"]
            cls, clu = selected_on_val(h, "class_acc"), selected_on_val(h, "cluster_acc")
            row = {"variant": name, "seed": seed, "test_class_acc": r.get("test_class_acc", math.nan),
                   "sel_test_class_acc": cls["test"], "sel_class_epoch": cls["epoch"],
                   "init_test_cluster_acc": r.get("init_test_cluster_acc", math.nan),
                   "init_val_cluster_acc": r.get("init_val_cluster_acc", math.nan),
                   "test_cluster_acc": r.get("test_cluster_acc", math.nan),
                   "val_cluster_acc": r.get("val_cluster_acc", math.nan),
                   "sel_test_cluster_acc": clu["test"], "sel_cluster_epoch": clu["epoch"],
                   "test_nmi": r.get("test_nmi", math.nan), "test_ari": r.get("test_ari", math.nan),
                   "selected_epoch": r.get("selected_epoch", math.nan),
                   "purity": "/".join(f"{p:.3f}" for p in r.get("purity", {}).values()),
                   "seconds": time.perf_counter() - t0}
            rows.append(row)
            runs[f"{name}_seed{seed}"] = {"changes": changes, **r}
            print("ROW " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in row.items()), flush=True)
    report = {"rows": rows, "runs": runs}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float) + "\n")
    return report


def _study(base, seeds: list[int], classes: list[str], train) -> dict:
    """Floor, best mass cuts, the supervised ceiling and every seed, with the table of studies/quality_study.py."""
    import jax

    from studies.quality_study import _summary_row, baseline_rows, markdown, summarize
    from ucluster.baselines import best_mass_cuts, mass_kmeans

    floor = mass_kmeans(base)
    cuts = best_mass_cuts(base)
    print(f"mass floor {floor['test_cluster_acc']:.3f}, best mass cuts {cuts['test_cluster_acc']:.3f}", flush=True)
    sup = train("supervised", model={"target": "truth"}, train={"seed": seeds[0]})
    runs = {s: train(f"ucluster_seed{s}", train={"seed": s}) for s in seeds}
    floor_row, cuts_row = baseline_rows(floor, cuts, classes)
    best_sup = max(h["test_class_acc"] for h in sup["history"])
    sup_row = _summary_row("supervised, same network (ceiling)", sup, classes,
                           f"seed {seeds[0]}; best epoch {best_sup:.3f}")
    seed_rows = [_summary_row(f"UCluster seed {s}", r, classes,
                              f"mean of last 4 epochs {r['last4_mean_test_cluster_acc']:.3f}")
                 for s, r in runs.items()]
    summary = summarize(floor_row, sup_row, seed_rows, None)
    table = markdown([floor_row, cuts_row, sup_row, *seed_rows], summary, classes)
    print(f"\n{floor['train_jets']} training / {floor['test_jets']} test jets\n\n{table}")
    return {"device": str(jax.devices()[0].device_kind), "train_jets": floor["train_jets"],
            "test_jets": floor["test_jets"], "config": base.to_dict(), "summary": summary, "table": table,
            "supervised": sup, "ucluster": {str(s): r for s, r in runs.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    pk = sub.add_parser("pack", help="float16 parts of a converted dataset, for a size-limited transfer")
    pk.add_argument("--data", required=True)
    pk.add_argument("--out", required=True)
    pk.add_argument("--part-mb", type=float, default=55.0)
    pk.add_argument("--max-particles", type=int, default=0, help="keep each jet's leading N particles (0 = all)")
    pk.add_argument("--config", default=None, help="the selection (data.classes, mass window) to keep")
    sm = sub.add_parser("simulate", help="jobs/simulate_jets without Spark: a local process pool")
    sm.add_argument("--out", required=True)
    sm.add_argument("--kinds", default="w,z,t")
    sm.add_argument("--jets-per-kind", type=int, default=1000)
    sm.add_argument("--seed", type=int, default=1)
    sm.add_argument("--jets-per-task", type=int, default=250)
    sm.add_argument("--procs", type=int, default=1)
    up = sub.add_parser("unpack", help="a Parquet dataset from packed parts")
    up.add_argument("--packed", required=True)
    up.add_argument("--out", required=True)
    rn = sub.add_parser("run", help="floor, best mass cuts, supervised and UCluster seeds on one GPU")
    rn.add_argument("--config", default=None, help="YAML configuration (default: conf/ucluster.yaml)")
    rn.add_argument("--data", dest="cfg__data__path", default=None, help="Parquet dataset")
    rn.add_argument("--seeds", default="1,2,3")
    rn.add_argument("--json", default=None)
    rn.add_argument("--skip-baselines", action="store_true",
                    help="UCluster seeds only (a point of a sweep): no floor, mass cuts or supervised run")
    add_config_arguments(rn)
    sw = sub.add_parser("sweep", help="named config variants x seeds, figures selected on val")
    sw.add_argument("--config", default=None)
    sw.add_argument("--data", dest="cfg__data__path", default=None)
    sw.add_argument("--seeds", default="1")
    sw.add_argument("--variant", action="append", required=True,
                    help="name:section.field=value;section.field=value (repeatable)")
    sw.add_argument("--json", default=None)
    add_config_arguments(sw)
    args = p.parse_args(argv)
    from ucluster.data.schema import DatasetError
    from ucluster.train.trainer import TrainingError

    try:
        if args.command == "pack":
            out = Path(args.out)
            if out.exists() and any(out.iterdir()):
                raise ConfigError(f"{out}: exists and is not empty")
            cfg = load_config(args.config)
            parts = pack(args.data, out, list(cfg.data.classes), cfg.data.mass_min, cfg.data.mass_max, args.part_mb,
                         args.max_particles)
            for part in parts:
                mb = sum(f.stat().st_size for f in part.iterdir()) / 1e6
                print(f"{part}: {mb:.1f} MB")
        elif args.command == "simulate":
            simulate(args.out, args.kinds, args.jets_per_kind, args.seed, args.jets_per_task, args.procs)
        elif args.command == "unpack":
            out = Path(args.out)
            if out.exists():
                raise ConfigError(f"{out}: exists")
            print(unpack(Path(args.packed), out))
        elif args.command == "sweep":
            sweep(args)
        else:
            run(args)
    except (ConfigError, DatasetError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
