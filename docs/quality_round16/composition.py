"""What a trained model's clusters hold: test jets per cluster, by class and by whether soft drop kept both prongs.

Round 15's hybrid-mass target scored 0.62 on the paper-size network with W and Z purity near 0.5. One reading:
the network tells jets whose soft drop removed a prong (m_SD < 0.5 m) from the others, and k-means cuts along
that instead of along the mass. This table says whether it does. The clusters come from the production
assignment job (``jobs.assign`` on the model file); m_SD is joined from the dataset by jet key.

    python -m jobs.assign --model hyb_log_1.keras --data /tmp/jets.parquet --out /tmp/assign_hyb --splits test
    python docs/quality_round16/composition.py --assignments /tmp/assign_hyb --data /tmp/jets.parquet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from ucluster.data.loader import hybrid_mass  # noqa: E402
from ucluster.inference.assign import read_assign_meta  # noqa: E402
from ucluster.inference.evaluate import default_selection  # noqa: E402
from ucluster.train import metrics as M  # noqa: E402


def composition(assignments: str, data: str, fraction: float, classes: list[str] | None = None) -> str:
    """The table, as text: one row per cluster; counts per (class, soft drop kept / lost) and median masses.
    The jets are those the training run scored: its classes and mass window, as the assignment recorded them."""
    meta = read_assign_meta(assignments)
    sel = default_selection(meta, classes=classes)
    classes, names = sel.classes, meta["dataset"]["class_names"]
    ids = np.array([names.index(c) for c in classes])
    a = ds.dataset(f"{assignments}/split=test").to_table(columns=["jet_key", "cluster", "label", "jet_mass"])
    d = ds.dataset(f"{data}/split=test").to_table(columns=["jet_key", "jet_mass_sd"])
    order = np.argsort(d["jet_key"].to_numpy())
    keys = d["jet_key"].to_numpy()[order]
    at = np.searchsorted(keys, a["jet_key"].to_numpy())
    if np.any(keys[np.minimum(at, len(keys) - 1)] != a["jet_key"].to_numpy()):
        raise SystemExit(f"{assignments}: jet keys not found in {data}/split=test")
    msd = d["jet_mass_sd"].to_numpy()[order][at]
    m, cl, raw = a["jet_mass"].to_numpy(), a["cluster"].to_numpy(), a["label"].to_numpy()
    keep = (m > sel.mass_min) & (m < sel.mass_max) & np.isin(raw, ids)
    m, msd, cl = m[keep], msd[keep], cl[keep]
    lab = np.searchsorted(np.sort(ids), raw[keep])
    lab = np.argsort(ids)[lab]  # index into classes
    kept = msd >= fraction * m
    hyb = hybrid_mass(m, msd, fraction)
    k = int(cl.max()) + 1
    table = M.contingency(cl, lab, k, len(classes))
    lines = [f"{len(m)} test jets in ({sel.mass_min:g}, {sel.mass_max:g}) GeV; cluster accuracy "
             f"{M.cluster_accuracy(table):.3f}; soft drop kept both prongs (m_SD >= {fraction:g} m) for "
             f"{kept.mean():.2f} of them",
             "cluster   jets  " + "  ".join(f"{c:>5}kept {c:>5}lost" for c in classes)
             + "  kept_frac  median m  median m_SD  median hybrid"]
    for j in range(k):
        c = cl == j
        counts = "  ".join(f"{np.sum(c & (lab == i) & kept):9d} {np.sum(c & (lab == i) & ~kept):9d}"
                           for i in range(len(classes)))
        lines.append(f"{j:7d} {c.sum():6d}  {counts}  {kept[c].mean():9.2f}  {np.median(m[c]):8.1f}  "
                     f"{np.median(msd[c]):11.1f}  {np.median(hyb[c]):13.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--assignments", required=True, help="jobs.assign output (with split=test)")
    p.add_argument("--data", required=True, help="the dataset the model was trained on (with jet_mass_sd)")
    p.add_argument("--classes", default="", help="comma-separated (default: the training run's, else all)")
    p.add_argument("--fraction", type=float, default=0.5, help="m_SD / m at or above which both prongs count as kept")
    a = p.parse_args(argv)
    print(composition(a.assignments, a.data, a.fraction, [c for c in a.classes.split(",") if c] or None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
