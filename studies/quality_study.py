"""Clustering-quality study: the figures issue 6 asks for, measured by the project's own code in one go.

    python -m studies.quality_study --data runs/big/jets.parquet --config conf/ucluster.yaml --seeds 1,2,3 \\
        --out runs/quality [--section.field VALUE ...]

On one dataset and one configuration (overrides apply to every run) it measures, in this order:

1. the floor: k-means on the jet mass alone (``ucluster.baselines.mass_kmeans``), and for reference the best
   thresholds on the jet mass chosen with the true labels (``ucluster.baselines.best_mass_cuts``);
2. the ceiling: the same network trained on the true labels (``model.target=truth``), first seed;
3. UCluster with every seed on one worker;
4. UCluster on two workers at the same global batch (half the per-worker batch, lr not rescaled), first seed,
   next to the one-worker run of that seed.

Every training is a nested MLflow run under one parent run "quality-study", whose artifacts hold the table
(``quality.md``) and the figures (``quality.json``); both are also written to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

from ucluster.config import Config, ConfigError, add_config_arguments, load_config, overrides_from_args

METRICS = ("test_cluster_acc", "test_nmi", "test_ari")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="YAML configuration (default: the built-in defaults)")
    p.add_argument("--data", dest="cfg__data__path", default=None, help="Parquet dataset")
    p.add_argument("--seeds", default="1,2,3", help="comma-separated seeds of the UCluster runs (>= 3 for a spread)")
    p.add_argument("--out", default="runs/quality", help="directory of the runs, their MLflow store and the table")
    p.add_argument("--skip-two-workers", action="store_true", help="leave out the 1-vs-2-worker comparison")
    p.add_argument("--master", default=None, help="Spark master for the launcher (default: local)")
    add_config_arguments(p)
    return p.parse_args(argv)


def _run_config(base: Config, out: Path, name: str, uri: str, parent: str, **changes: dict) -> Config:
    """``base`` with its own output directory, the shared MLflow store and the parent run, plus ``changes``
    given per section (``train={"seed": 2}``)."""
    sections = {s: dataclasses.replace(getattr(base, s), **changes.get(s, {})) for s in ("data", "model", "train")}
    run = dataclasses.replace(base.run, output_dir=str(out / name), run_name=name, tracking_uri=uri,
                              parent_run_id=parent, resume=False, **changes.get("run", {}))
    return dataclasses.replace(base, run=run, **sections)


def _train(cfg: Config, spark) -> dict:
    from ucluster.train.checkpoint import checkpoint_path
    from ucluster.train.trainer import train

    ckpt = checkpoint_path(cfg.run.output_dir)
    if ckpt.exists():  # a study always trains from scratch: an old checkpoint would be resumed otherwise
        ckpt.unlink()
    print(f"\n== {cfg.run.run_name}: seed {cfg.train.seed}, {abs(cfg.run.np)} worker(s), batch "
          f"{cfg.train.batch_size}/worker, target {cfg.model.target}", flush=True)
    return train(cfg, spark=spark)


def _summary_row(name: str, result: dict, classes: list[str], extra: str = "") -> dict:
    row = {"name": name, **{m: float(result[m]) for m in METRICS if m in result}}
    row["test_class_acc"] = float(result.get("test_class_acc", float("nan")))
    if "init_test_cluster_acc" in result:  # the k-means initialisation, before the deep k-means phase
        row["init_cluster_acc"] = float(result["init_test_cluster_acc"])
    row.update({f"purity_{c}": float(result["purity"][c]) for c in classes if "purity" in result})
    if "run_id" in result:
        row["run_id"] = result["run_id"]
    row["notes"] = extra
    return row


def baseline_rows(floor: dict, cuts: dict | None, classes: list[str]) -> list[dict]:
    """Table rows of the mass-only k-means floor and, when measured, the best labelled mass cuts."""
    rows = [{"name": "k-means on the jet mass (floor)", "test_cluster_acc": floor["test_cluster_acc"],
             "test_nmi": floor["test_nmi"], "test_ari": floor["test_ari"],
             **{f"purity_{c}": floor[f"purity_{c}"] for c in classes}, "notes": "jobs/baselines.py"}]
    if cuts is not None:
        rows.append({"name": "best cuts on the jet mass (true labels)", "test_cluster_acc": cuts["test_cluster_acc"],
                     "test_nmi": cuts["test_nmi"], "test_ari": cuts["test_ari"],
                     "notes": "cuts at " + ", ".join(f"{c:.0f}" for c in cuts["cuts_gev"]) + " GeV"})
    return rows


def summarize(floor: dict, supervised: dict, seeds: list[dict], two_workers: dict | None) -> dict:
    """Means, spreads and the issue's three checks from the measured rows."""
    accs = [r["test_cluster_acc"] for r in seeds]
    mean = statistics.fmean(accs)
    spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
    ceiling = supervised["test_class_acc"]
    out = {
        "ucluster_mean_acc": mean, "ucluster_std_acc": spread, "ucluster_min_acc": min(accs),
        "ucluster_mean_nmi": statistics.fmean(r["test_nmi"] for r in seeds),
        "ucluster_mean_ari": statistics.fmean(r["test_ari"] for r in seeds),
        "ucluster_mean_init_acc": statistics.fmean(r.get("init_cluster_acc", float("nan")) for r in seeds),
        "supervised_acc": ceiling, "mass_floor_acc": floor["test_cluster_acc"],
        "ratio_to_supervised": mean / ceiling, "points_above_floor": 100 * (mean - floor["test_cluster_acc"]),
    }
    out["goal_ratio_met"] = out["ratio_to_supervised"] >= 0.95
    out["goal_floor_met"] = out["points_above_floor"] >= 12
    if two_workers is not None:
        out["two_worker_points"] = 100 * (two_workers["test_cluster_acc"] - seeds[0]["test_cluster_acc"])
        out["goal_workers_met"] = abs(out["two_worker_points"]) <= 1
    return out


def markdown(rows: list[dict], summary: dict, classes: list[str]) -> str:
    head = ["run", "cluster acc", "k-means init acc", "class acc", "NMI", "ARI", *[f"purity {c}" for c in classes],
            "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def fmt(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) and value == value else "–"

    for r in rows:
        cells = [r["name"], fmt(r.get("test_cluster_acc")), fmt(r.get("init_cluster_acc")),
                 fmt(r.get("test_class_acc")), fmt(r.get("test_nmi")),
                 fmt(r.get("test_ari")), *[fmt(r.get(f"purity_{c}")) for c in classes], r.get("notes", "")]
        lines.append("| " + " | ".join(cells) + " |")
    s = summary
    lines += ["", f"UCluster: cluster accuracy {s['ucluster_mean_acc']:.3f} ± {s['ucluster_std_acc']:.3f} "
              f"(mean ± std over seeds; lowest {s['ucluster_min_acc']:.3f}), NMI {s['ucluster_mean_nmi']:.3f}, "
              f"ARI {s['ucluster_mean_ari']:.3f}; the k-means initialisation alone gave "
              f"{s['ucluster_mean_init_acc']:.3f}.",
              f"- {s['ratio_to_supervised']:.2f} × the supervised accuracy {s['supervised_acc']:.3f} "
              f"(goal ≥ 0.95: {'met' if s['goal_ratio_met'] else 'not met'})",
              f"- {s['points_above_floor']:+.1f} points against the mass-only floor {s['mass_floor_acc']:.3f} "
              f"(goal ≥ +12: {'met' if s['goal_floor_met'] else 'not met'})"]
    if "two_worker_points" in s:
        lines.append(f"- 2 workers vs 1 at equal global batch: {s['two_worker_points']:+.1f} points "
                     f"(goal within 1: {'met' if s['goal_workers_met'] else 'not met'})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        print(f"error: --seeds: expected comma-separated integers, got {args.seeds!r}", file=sys.stderr)
        return 2
    if not seeds:
        print("error: --seeds: give at least one seed", file=sys.stderr)
        return 2
    try:
        base = load_config(args.config, overrides_from_args(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import mlflow

    from ucluster.atomic import atomic_write_bytes
    from ucluster.baselines import best_mass_cuts, mass_kmeans
    from ucluster.data.schema import DatasetError
    from ucluster.spark import get_spark
    from ucluster.tracking import setup_mlflow, tracking_uri
    from ucluster.train.trainer import TrainingError

    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    experiment = f"{base.run.experiment}-quality"
    uri = tracking_uri(out, base.run.tracking_uri)
    setup_mlflow(out, experiment, base.run.tracking_uri)
    classes = list(base.data.classes)
    spark = get_spark("ucluster-quality-study", args.master) if base.run.np > 0 else None
    parent = mlflow.start_run(run_name="quality-study")
    mlflow.log_text(base.to_yaml(redacted=True), "config.yaml")
    mlflow.log_params({"seeds": args.seeds, "dataset": base.data.path})
    mlflow.end_run()  # children are started by other processes (the Horovod workers): leave the parent closed
    base = dataclasses.replace(base, run=dataclasses.replace(base.run, experiment=experiment))
    try:
        floor = mass_kmeans(base)
        print(f"mass-only k-means floor: {floor['test_cluster_acc']:.3f} on {floor['test_jets']} test jets", flush=True)
        cuts = best_mass_cuts(base) if base.model.n_clusters in (2, 3) else None
        one = {"run": {"np": -1}}
        sup = _train(_run_config(base, out, "supervised", uri, parent.info.run_id, model={"target": "truth"},
                                 train={"seed": seeds[0]}, **one), spark)
        runs = [_train(_run_config(base, out, f"ucluster_seed{s}", uri, parent.info.run_id, train={"seed": s}, **one),
                       spark) for s in seeds]
        two = None
        if not args.skip_two_workers:
            half = max(base.train.batch_size // 2, 1)
            two = _train(_run_config(base, out, f"ucluster_seed{seeds[0]}_2workers", uri, parent.info.run_id,
                                     train={"seed": seeds[0], "batch_size": half, "scale_lr": False},
                                     run={"np": -2}), spark)
    except (ConfigError, DatasetError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    floor_row, *cuts_rows = baseline_rows(floor, cuts, classes)
    rows = [floor_row, *cuts_rows, _summary_row("supervised, same network (ceiling)", sup, classes, f"seed {seeds[0]}")]
    sup_row = rows[-1]
    seed_rows = [_summary_row(f"UCluster seed {s}", r, classes, "1 worker") for s, r in zip(seeds, runs, strict=True)]
    rows += seed_rows
    two_row = None
    if two is not None:
        two_row = _summary_row(f"UCluster seed {seeds[0]}, 2 workers", two, classes,
                               f"2 x {max(base.train.batch_size // 2, 1)} jets per step, lr not rescaled")
        rows.append(two_row)
    summary = summarize(floor_row, sup_row, seed_rows, two_row)
    table = markdown(rows, summary, classes)
    report = {"dataset": base.data.path, "train_jets": floor["train_jets"], "test_jets": floor["test_jets"],
              "config": base.to_dict(), "rows": rows, "summary": summary}
    atomic_write_bytes(out / "quality.json", (json.dumps(report, indent=2) + "\n").encode())
    atomic_write_bytes(out / "quality.md", table.encode())
    with mlflow.start_run(run_id=parent.info.run_id):
        mlflow.log_metrics({k: float(v) for k, v in summary.items()})
        mlflow.log_artifact(str(out / "quality.json"))
        mlflow.log_artifact(str(out / "quality.md"))
    print(f"\n{floor['train_jets']} training / {floor['test_jets']} test jets; dataset {base.data.path}\n")
    print(table)
    print(f"written: {out / 'quality.md'}, {out / 'quality.json'}; MLflow store {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
