"""The k-means baseline of anomaly mode at injected signal fractions of 1 %, 0.3 % and 0.1 %, at scale.

Simulates QCD and W' events in a process pool (until ``--sim-seconds`` run out: the events actually used are
printed), computes per event m_jj, m_j1, m_j2, tau21_j1, tau21_j2 exactly as the converter does
(conversion.lhco_events.event_record), thins the signal per fraction with the converter's key rule, and runs
k-means on the standardised (m_j1, m_j2, tau21_j1, tau21_j2) with several seeds, printing the anomaly report
(most enriched cluster's signal fraction, S/sqrt(B), m_jj sculpting) as JSON. Meant for a many-core host:

    python -m studies.anomaly_baseline --qcd 100000 --wprime 4000 --processes 16 --out results.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time

import numpy as np


def _features(path: str) -> dict:
    import fastjet

    from conversion.lhco_events import JET_R, event_record, read_events
    from ucluster.data import schema as S

    with __import__("h5py").File(path, "r") as f:
        n = f["df"]["block0_values"].shape[0]
    parts, labels = read_events(path, 0, n)
    jet_def = fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R)
    rows = {k: [] for k in ("row", "label", "mjj", S.M_J1, S.M_J2, S.TAU21_J1, S.TAU21_J2)}
    for i in range(n):
        rec = event_record(parts[i], jet_def, 1)
        if rec is None:
            continue
        c = rec[2]
        rows["row"].append(i)
        rows["label"].append(int(labels[i]))
        for k in ("mjj", S.M_J1, S.M_J2, S.TAU21_J1, S.TAU21_J2):
            rows[k].append(float(c[k]))
    return {"file": os.path.basename(path), **rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qcd", type=int, default=100000)
    p.add_argument("--wprime", type=int, default=4000)
    p.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    p.add_argument("--events-per-task", type=int, default=1000)
    p.add_argument("--sim-seconds", type=float, default=420.0)
    p.add_argument("--h5", default="h5")
    p.add_argument("--fractions", default="0.01,0.003,0.001")
    p.add_argument("--clusters", default="4,8,16")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default="anomaly_baseline.json")
    args = p.parse_args(argv)

    from conversion.convert import jet_keys
    from studies.anomaly_gpu import simulate
    from ucluster.inference.anomaly import anomaly_report, kmeans_baseline

    t0 = time.perf_counter()
    files = simulate(args.h5, args.qcd, args.wprime, args.processes, args.events_per_task, args.sim_seconds)
    t_sim = time.perf_counter() - t0
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.processes) as pool2:
        feats = pool2.map(_features, files)
    t_feat = time.perf_counter() - t0 - t_sim
    cols = {k: np.concatenate([np.asarray(f[k]) for f in feats]) for k in feats[0] if k != "file"}
    keys = np.concatenate([jet_keys(f["file"], np.asarray(f["row"], np.int64)) for f in feats])
    u = (keys.view(np.uint64) & np.uint64((1 << 32) - 1)).astype(np.float64) / float(1 << 32)
    n_sig, n_bkg = int((cols["label"] == 1).sum()), int((cols["label"] == 0).sum())
    out = {"n_background": n_bkg, "n_signal_available": n_sig, "sim_seconds": t_sim, "feature_seconds": t_feat,
           "files": len(files), "results": []}
    print(f"{n_bkg} background, {n_sig} signal events after the two-jet requirement; features {t_feat:.0f} s",
          file=sys.stderr)
    for frac in map(float, args.fractions.split(",")):
        keep = frac * n_bkg / ((1 - frac) * n_sig)
        sel = (cols["label"] == 0) | (u < keep)
        for k in map(int, args.clusters.split(",")):
            for seed in range(args.seeds):
                c = kmeans_baseline(cols["m_j1"][sel], cols["m_j2"][sel], cols["tau21_j1"][sel],
                                    cols["tau21_j2"][sel], k, seed=seed)
                r = anomaly_report(c, cols["label"][sel], cols["mjj"][sel], k)
                best = r.clusters[r.enriched_cluster]
                row = {"fraction": frac, "input_fraction": r.input_signal_fraction, "k": k, "seed": seed,
                       "enriched_fraction": r.enriched_signal_fraction, "enriched_events": best["events"],
                       "enriched_signal": best["signal"], "s_over_sqrt_b": best["s_over_sqrt_b"],
                       "sculpting_js": r.sculpting_js}
                out["results"].append(row)
                print(json.dumps(row), file=sys.stderr)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
