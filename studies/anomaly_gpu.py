"""UCluster in anomaly mode at scale, on one GPU host (``KERAS_BACKEND=jax``; no Spark or MLflow needed there).

GPU machines here have JAX but no TensorFlow, JVM or MLflow, so this study runs the product's pieces without
them: the event simulator's tasks in a process pool, the LHCO converter with ``processes`` (one dataset per
injected signal fraction, thinned by the converter's key rule), the one training loop with the JAX engine
(``track=False``), and the anomaly report of ``jobs/evaluate.py --anomaly`` on every split:

    KERAS_BACKEND=jax python -m studies.anomaly_gpu simulate --out /tmp/h5 --qcd 104000 --wprime 2000
    python -m studies.anomaly_gpu convert --h5 /tmp/h5 --fraction 0.01 --out /tmp/ev1.parquet
    KERAS_BACKEND=jax python -m studies.anomaly_gpu train --data /tmp/ev1.parquet --seeds 1,2,3 --json a.json
    python -m studies.anomaly_gpu baseline --data /tmp/ev1.parquet --clusters 16,32,64

``train`` prints one ``ANOMALY`` line per seed and split: the most enriched cluster's signal fraction against
the input fraction, its S/sqrt(B) and the background m_jj sculpting there, as in docs/anomaly.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ucluster.config import add_config_arguments, load_config, overrides_from_args  # noqa: E402


def simulate(out: str, qcd: int, wprime: int, processes: int, events_per_task: int, seconds: float,
             signal: str = "wprime") -> list[str]:
    """The tasks of ``jobs/simulate_events`` (same seeds and files) in a pool, stopped after ``seconds``: the
    files finished by then are kept (printed), the rest are not written. A file already in ``out`` with the task's
    kind, seed and event count is the same events and is kept, not simulated again. ``signal`` is the signal kind
    (``wprime``: W' -> W Z; ``wprime_xy``: W' -> X(500) Y(100), the LHCO R&D masses)."""
    import multiprocessing as mp

    import h5py

    from ucluster.sim.pythia_events import plan_tasks, run_task

    os.makedirs(out, exist_ok=True)
    tasks = plan_tasks({signal: wprime, "qcd": qcd}, events_per_task=events_per_task)
    t0 = time.perf_counter()
    planned = len(tasks)

    def on_disk(task) -> bool:
        path = Path(out) / task.file_name
        if not path.exists():
            return False
        with h5py.File(path, "r") as f:
            return f["df"]["block0_values"].shape[0] == task.n_events

    kept = [t for t in tasks if on_disk(t)]
    done = [{"path": str(Path(out) / t.file_name), "error": None} for t in kept]
    tasks = [t for t in tasks if t not in kept]
    pool = mp.get_context("spawn").Pool(processes)
    pending = [pool.apply_async(run_task, (t, out)) for t in tasks]
    while pending and time.perf_counter() - t0 < seconds:
        time.sleep(2)
        done += [r.get() for r in pending if r.ready()]
        pending = [r for r in pending if not r.ready()]
    pool.terminate()
    pool.join()
    for r in done:
        if r["error"]:
            print(f"task failed: {r['error']}", file=sys.stderr)
    files = sorted(r["path"] for r in done if r["path"])
    print(f"{len(files)} of {planned} files ready ({planned - len(tasks)} kept from before) in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return files


def convert(h5: str, fraction: float, out: str, processes: int, max_particles: int) -> None:
    from conversion.lhco_events import convert_events

    s = convert_events(h5, out, signal_fraction=fraction, max_particles_per_jet=max_particles, progress=False,
                       processes=processes, overwrite=True)
    print(f"converted {s.jets} events at signal fraction {fraction} in {s.seconds:.0f} s: {s.counts}", flush=True)


def _events(cfg, model, split: str) -> dict:
    """One pass of the trained model over ``split``: per event its cluster, clustering latent, the classifier's
    expected target coordinates, label and m_jj."""
    from ucluster.data.loader import JetStream
    from ucluster.train.loop import target_coordinates

    parts: dict[str, list] = {"cluster": [], "latent": [], "coords": [], "label": [], "mjj": []}
    for batch in JetStream(cfg, split, targets=False).eval_batches(cfg.train.batch_size, 0):
        out = model({"features": batch["features"], "mask": batch["mask"]}, training=False)
        v = batch["valid"] > 0
        parts["cluster"].append(np.asarray(out["distances"]).argmin(-1)[v])
        parts["latent"].append(np.asarray(out["latent"])[v])
        parts["coords"].append(target_coordinates(cfg, np.asarray(out["logits"]))[v])
        parts["label"].append(batch["label"][v])
        parts["mjj"].append(batch["mass"][v])
    return {k: np.concatenate(v) for k, v in parts.items()}


def latent_kmeans(a: dict, t: dict, clusters: list[int], name: str, seed: int) -> list[dict]:
    """Plain k-means at each k on the trained network's latent and on its target coordinates (standardised),
    fitted on the training events ``a`` (:func:`_events`): what the representation alone offers, apart from the
    deep k-means phase. The most enriched cluster is chosen on train and scored on the test events ``t``."""
    from sklearn.cluster import KMeans

    from ucluster.inference.anomaly import anomaly_report

    rows = []
    for space in ("latent", "coords"):
        xa, xt = a[space], t[space]
        if space == "coords":
            mean, std = xa.mean(0), np.maximum(xa.std(0), 1e-12)
            xa, xt = (xa - mean) / std, (xt - mean) / std
        for k in clusters:
            km = KMeans(k, n_init=3, random_state=seed).fit(xa)
            rep = anomaly_report(km.labels_, a["label"], a["mjj"], k)
            test = anomaly_report(km.predict(xt), t["label"], t["mjj"], k)
            best, kept = rep.clusters[rep.enriched_cluster], test.clusters[rep.enriched_cluster]
            rows.append({"space": space, "k": k, "enriched_fraction": rep.enriched_signal_fraction,
                         "enriched_events": best["events"], "test_fraction_of_train_choice": kept["signal_fraction"],
                         "test_events_of_train_choice": kept["events"]})
            print(f"LATENT_KMEANS {name} seed{seed} {space} k={k} train: {rep.enriched_signal_fraction:.4f} "
                  f"({best['signal']}/{best['events']}); test, the train-chosen cluster: "
                  f"{kept['signal_fraction']:.4f} ({kept['signal']}/{kept['events']})", flush=True)
    return rows


def train(args: argparse.Namespace) -> dict:
    import keras

    from ucluster.inference.anomaly import anomaly_report
    from ucluster.train import loop
    from ucluster.train.engines.jax_local import JaxLocalEngine

    common = overrides_from_args(args)
    out: dict = {"runs": []}
    base = load_config(args.config, common)
    for seed in [int(s) for s in args.seeds.split(",") if s.strip()]:
        cfg = load_config(args.config, {**common, "train.seed": seed, "run.progress": False,
                                        "run.output_dir": str(Path(base.run.output_dir) / f"{args.name}_seed{seed}")})
        t0 = time.perf_counter()

        def show(epoch: int, m: dict, seed=seed) -> None:
            print(f"EPOCH {args.name} seed{seed} {epoch} loss={m['loss']:.4f} class={m['test_class_acc']:.3f} "
                  f"moved={m.get('test_moved_from_prev', math.nan):.3f} "
                  f"moved_matched={m.get('test_moved_from_prev_matched', math.nan):.3f} min_cluster="
                  f"{m.get('test_min_cluster_fraction', math.nan):.4f} {m['jets_per_s']:.0f}/s", flush=True)

        result = loop.run(cfg, JaxLocalEngine(), track=False, on_epoch=show)
        model = keras.saving.load_model(result["model_path"])
        row = {"name": args.name, "seed": seed, "n_clusters": cfg.model.n_clusters,
               "train_seconds": time.perf_counter() - t0, "splits": {}}
        chosen = None  # the cluster chosen on train; on test it says what that choice is worth on unseen events
        events = {split: _events(cfg, model, split) for split in ("train", "test")}
        for split, c in events.items():
            rep = anomaly_report(c["cluster"], c["label"], c["mjj"], cfg.model.n_clusters)
            chosen = rep.enriched_cluster if chosen is None else chosen
            best, kept = rep.clusters[rep.enriched_cluster], rep.clusters[chosen]
            row["splits"][split] = {"events": int(len(c["label"])), "input_fraction": rep.input_signal_fraction,
                                    "enriched_fraction": rep.enriched_signal_fraction,
                                    "enriched_events": best["events"], "enriched_signal": best["signal"],
                                    "s_over_sqrt_b": best["s_over_sqrt_b"], "sculpting_js": rep.sculpting_js,
                                    "fraction_of_train_choice": kept["signal_fraction"],
                                    "events_of_train_choice": kept["events"], "signal_of_train_choice": kept["signal"],
                                    "clusters": rep.clusters}
            print(f"ANOMALY {args.name} seed{seed} {split}: input {rep.input_signal_fraction:.4f} -> enriched "
                  f"{rep.enriched_signal_fraction:.4f} ({best['signal']}/{best['events']} events), S/sqrt(B) "
                  f"{best['s_over_sqrt_b']:.2f}, JS {rep.sculpting_js:.4f}; the train-chosen cluster "
                  f"{kept['signal_fraction']:.4f} ({kept['signal']}/{kept['events']} events)", flush=True)
        if args.latent_kmeans:
            row["latent_kmeans"] = latent_kmeans(events["train"], events["test"],
                                                 [int(k) for k in args.latent_kmeans.split(",")], args.name, seed)
        out["runs"].append(row)
    if args.baseline:  # k-means on (m_j1, m_j2, tau21 x 2) of the same training events, same k
        out["baseline"] = baseline(base.data.path, [base.model.n_clusters], 3, "")["baseline"]
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float) + "\n")
    return out


def baseline(data: str, clusters: list[int], seeds: int, json_out: str) -> dict:
    """The k-means baseline on (m_j1, m_j2, tau21 x 2), fitted on the training events at several k, and the
    quantiles of the jet masses over all training events (what a physicist would look at to choose the target's
    mass range without labels). The most enriched cluster is chosen on train; the test split, assigned to the
    train-fitted centroids, then says what that choice is worth on events the fit never saw."""
    import pyarrow.parquet as pq

    from ucluster.data import schema as S
    from ucluster.inference.anomaly import KMeansBaseline, anomaly_report

    columns = ["label", S.MJJ, S.M_J1, S.M_J2, S.TAU21_J1, S.TAU21_J2]
    obs = (S.M_J1, S.M_J2, S.TAU21_J1, S.TAU21_J2)

    def read(split: str) -> dict[str, np.ndarray]:
        table = pq.read_table(S.split_files(data, split), columns=columns)
        return {k: np.asarray(v) for k, v in table.to_pydict().items()}

    a, t = read("train"), read("test")
    qs = [0.5, 0.9, 0.99, 0.999]
    out: dict = {"quantiles": {v: dict(zip(map(str, qs), np.quantile(a[v], qs).tolist(), strict=True))
                               for v in (S.M_J1, S.M_J2)}, "baseline": []}
    print(f"QUANTILES {json.dumps(out['quantiles'])}", flush=True)
    for k in clusters:
        for seed in range(seeds):
            fitted = KMeansBaseline.fit(*(a[v] for v in obs), k, seed=seed)
            rep = anomaly_report(fitted.labels, a["label"], a[S.MJJ], k)
            best = rep.clusters[rep.enriched_cluster]
            test = anomaly_report(fitted.assign(*(t[v] for v in obs)), t["label"], t[S.MJJ], k)
            chosen = test.clusters[rep.enriched_cluster]  # the cluster chosen on train, scored on test
            out["baseline"].append({"k": k, "seed": seed, "input_fraction": rep.input_signal_fraction,
                                    "enriched_fraction": rep.enriched_signal_fraction,
                                    "enriched_events": best["events"], "enriched_signal": best["signal"],
                                    "s_over_sqrt_b": best["s_over_sqrt_b"], "sculpting_js": rep.sculpting_js,
                                    "test_input_fraction": test.input_signal_fraction,
                                    "test_fraction_of_train_choice": chosen["signal_fraction"],
                                    "test_events_of_train_choice": chosen["events"],
                                    "test_signal_of_train_choice": chosen["signal"]})
            print(f"BASELINE k={k} seed{seed} train: input {rep.input_signal_fraction:.4f} -> enriched "
                  f"{rep.enriched_signal_fraction:.4f} ({best['signal']}/{best['events']} events), S/sqrt(B) "
                  f"{best['s_over_sqrt_b']:.2f}, JS {rep.sculpting_js:.4f}; test: input "
                  f"{test.input_signal_fraction:.4f}, the train-chosen cluster {chosen['signal_fraction']:.4f} "
                  f"({chosen['signal']}/{chosen['events']} events)", flush=True)
    if json_out:
        Path(json_out).write_text(json.dumps(out, indent=1, default=float) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("simulate")
    s.add_argument("--out", required=True)
    s.add_argument("--qcd", type=int, default=104000)
    s.add_argument("--wprime", type=int, default=2000, help="signal events (of --signal)")
    s.add_argument("--signal", default="wprime", choices=["wprime", "wprime_xy"])
    s.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    s.add_argument("--events-per-task", type=int, default=1000)
    s.add_argument("--seconds", type=float, default=420.0)
    c = sub.add_parser("convert")
    c.add_argument("--h5", required=True)
    c.add_argument("--fraction", type=float, required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    c.add_argument("--max-particles", type=int, default=50)
    t = sub.add_parser("train")
    t.add_argument("--config", default=str(REPO / "conf" / "anomaly.yaml"))
    t.add_argument("--data", required=True)
    t.add_argument("--seeds", default="1,2,3")
    t.add_argument("--name", default="anomaly")
    t.add_argument("--json", default="")
    t.add_argument("--baseline", action="store_true", help="also k-means on (m_j1, m_j2, tau21 x 2), same k")
    t.add_argument("--latent-kmeans", default="", help="also plain k-means at these k (e.g. 16,32,64) on the "
                   "trained latent and on the classifier's target coordinates")
    add_config_arguments(t)
    b = sub.add_parser("baseline")
    b.add_argument("--data", required=True)
    b.add_argument("--clusters", default="16,32,64")
    b.add_argument("--seeds", type=int, default=3)
    b.add_argument("--json", default="")
    args = p.parse_args(argv)
    if args.cmd == "simulate":
        simulate(args.out, args.qcd, args.wprime, args.processes, args.events_per_task, args.seconds, args.signal)
    elif args.cmd == "convert":
        convert(args.h5, args.fraction, args.out, args.processes, args.max_particles)
    elif args.cmd == "baseline":
        baseline(args.data, [int(k) for k in args.clusters.split(",")], args.seeds, args.json)
    else:
        args.cfg__data__path = args.data
        train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
