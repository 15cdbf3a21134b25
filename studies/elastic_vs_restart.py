"""Horovod elastic against ucluster's restart-from-checkpoint, measured side by side on this machine (issue 13).

    python -m studies.elastic_vs_restart                    # simulate a small Pythia sample, tiny model
    python -m studies.elastic_vs_restart --data data/jets.parquet --epochs 3 --json elastic.json

Both sides train the project's ABCnet (the tiny test configuration, deterministic ops) on the same jets with the
project's compiled step (``StepFunctions``, gradients averaged by ``DistributedGradientTape``) on 2 Horovod
workers, and in each scenario one worker is killed with SIGKILL (by the PID it reported, checked to descend from
the job this study started) once it is in the second epoch:

- ``restart``: ``jobs/train.py --np -2`` (the supervisor relaunches all workers from the last epoch checkpoint);
- ``elastic, 1 host x 2 slots``: ``horovodrun --host-discovery-script`` printing ``localhost:2`` (what
  ``--np -2`` is: local workers), the training wrapped in ``hvd.elastic.run`` with a ``TensorFlowState``
  (model and optimizer variables, epoch and batch) committed every ``--commit-every`` steps;
- the same with ``--blacklist-cooldown-range 10 20`` (a failed host may come back);
- ``elastic, 2 hosts x 1 slot``: discovery prints ``localhost:1`` and ``127.0.0.1:1``, two names Horovod runs
  locally, which is how a cluster with one worker per executor looks to it.

For each: exit status, whether the job finished, the world size after the fault, seconds from the kill to the
next training step, the work redone (fraction of an epoch) and the wall time against the same job undisturbed.
The elastic worker's epoch loop is this study's own (elastic needs its own loop); the step, the model and the
data stream are the project's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROOT = Path(__file__).resolve().parent.parent
# The fault tests' tiny configuration (tests/faults/conftest.py): seconds per epoch on 2 cores.
TINY = {"data.max_particles": "30", "data.shuffle_buffer": "256", "model.k": "6", "model.gap1_channels": "8",
        "model.gap2_channels": "8", "model.gap2_heads": "2", "model.point_channels": "16,16",
        "model.latent_dim": "16", "model.head_units": "16", "model.dropout": "0.0", "model.mass_bins": "8",
        "train.batch_size": "32", "train.pretrain_epochs": "1", "train.kmeans_sample": "300",
        "run.progress": "false", "run.deterministic": "true"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")
    w = sub.add_parser("worker", help="(internal) one elastic Horovod worker")
    w.add_argument("--data", required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--epochs", type=int, required=True)
    w.add_argument("--commit-every", type=int, required=True)
    p.add_argument("--data", default=None, help="Parquet dataset (default: simulate --jets-per-kind Pythia jets)")
    p.add_argument("--jets-per-kind", type=int, default=700)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--commit-every", type=int, default=10, help="elastic: steps between state commits")
    p.add_argument("--elastic-timeout", type=int, default=60, help="elastic: seconds to wait for workers")
    p.add_argument("--workdir", default="runs/elastic_vs_restart")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------------------------
# the elastic worker
def _config(data: str):
    from ucluster.config import load_config

    return load_config(None, {**TINY, "data.path": data})


def elastic_worker(args: argparse.Namespace) -> int:
    import horovod.tensorflow as hvd
    import keras
    import tensorflow as tf

    from ucluster.data import schema as S
    from ucluster.data.loader import JetStream
    from ucluster.distributed import init_horovod
    from ucluster.model.abcnet import build_model
    from ucluster.train.engines.horovod_tf import StepFunctions

    tf.config.experimental.enable_op_determinism()
    init_horovod()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    cfg = _config(args.data)
    meta = S.read_meta(cfg.data.path)
    keras.utils.set_random_seed(cfg.train.seed)
    model = build_model(cfg.model, cfg.data.max_particles, len(meta.feature_names), cfg.model.mass_bins)
    optimizer = keras.optimizers.Adam(cfg.train.lr)
    optimizer.build(model.trainable_variables)
    fns = StepFunctions(model, optimizer, cfg.train.gamma, hvd)
    out = Path(args.out)
    progress = out / f"progress-{os.getpid()}.jsonl"

    def record(**fields) -> None:
        with progress.open("a") as f:
            f.write(json.dumps({"time": time.time(), "pid": os.getpid(), "rank": hvd.rank(), "size": hvd.size(),
                                **fields}) + "\n")

    state = hvd.elastic.TensorFlowState(variables=[v.value for v in model.variables + optimizer.variables],
                                        epoch=0, batch=0)
    state.register_reset_callbacks([lambda: record(event="reset")])

    @hvd.elastic.run
    def train(state) -> None:
        record(event="start", epoch=state.epoch, batch=state.batch)
        while state.epoch < args.epochs:
            stream = JetStream(cfg, "train", hvd.rank(), hvd.size(), meta=meta)
            mine = stream.selected_rows() // cfg.train.batch_size
            steps = int(hvd.allreduce(tf.constant(mine), op=hvd.Min).numpy())  # equal steps on every worker
            for i, batch in enumerate(stream.batches(cfg.train.batch_size, steps, state.epoch, cfg.train.seed)):
                if i < state.batch:  # restored mid-epoch: these steps are in the committed state
                    continue
                fns.train(batch, 1.0, 0.0)
                state.batch = i + 1
                record(event="step", epoch=state.epoch, batch=state.batch, steps=steps)
                if state.batch % args.commit_every == 0:
                    state.commit()
                    record(event="commit", epoch=state.epoch, batch=state.batch, steps=steps)
            state.epoch, state.batch = state.epoch + 1, 0
            state.commit()
            record(event="commit", epoch=state.epoch, batch=0, steps=steps)

    train(state)
    record(event="done")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# the driver
def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return env


def _kill_descendant(job: subprocess.Popen, pid: int) -> float:
    import psutil

    if pid not in {p.pid for p in psutil.Process(job.pid).children(recursive=True)}:
        raise RuntimeError(f"pid {pid} is not a process of the job {job.pid}")
    os.kill(pid, signal.SIGKILL)
    return time.time()


def _records(out: Path) -> list[dict]:
    rows = []
    for f in out.glob("progress-*.jsonl"):
        for line in f.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:  # a line cut by the kill
                pass
    return sorted(rows, key=lambda r: r["time"])


def run_elastic(data: Path, out: Path, hosts: list[str], args, kill: bool, cooldown: bool = False) -> dict:
    import shutil

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    discovery = out / "discover.sh"
    discovery.write_text("#!/bin/sh\n" + "".join(f"echo {h}\n" for h in hosts))
    discovery.chmod(0o755)
    cmd = [str(Path(sys.executable).with_name("horovodrun")), "--gloo", "-np", "2", "--min-np", "1", "--max-np", "2",
           "--host-discovery-script", str(discovery), "--network-interface", "lo",
           "--elastic-timeout", str(args.elastic_timeout),
           *(["--blacklist-cooldown-range", "10", "20"] if cooldown else []),
           sys.executable, "-m", "studies.elastic_vs_restart", "worker", "--data", str(data), "--out", str(out),
           "--epochs", str(args.epochs), "--commit-every", str(args.commit_every)]
    t0 = time.time()
    log = (out / "job.log").open("w")
    job = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT)
    killed_at, victim = None, None
    deadline = t0 + 600
    while job.poll() is None and time.time() < deadline:
        if kill and killed_at is None:
            steps = [r for r in _records(out) if r["event"] == "step" and r["rank"] == 1 and r["epoch"] >= 1
                     and r["batch"] >= args.commit_every + args.commit_every // 2]
            if steps:
                victim = steps[-1]
                killed_at = _kill_descendant(job, victim["pid"])
        time.sleep(0.05)
    if job.poll() is None:
        job.kill()
    rc = job.wait()
    wall = time.time() - t0
    rows = _records(out)
    result = {"scenario": f"elastic, hosts {' '.join(hosts)}" + (", cooldown 10-20 s" if cooldown else ""),
              "rc": rc, "wall_s": wall, "finished": any(r["event"] == "done" for r in rows)}
    if killed_at is not None:
        after = [r for r in rows if r["time"] > killed_at and r["event"] == "step"]
        commits = [r for r in rows if r["event"] == "commit" and r["time"] < killed_at and r["rank"] == 0]
        done = max((r["epoch"], r["batch"]) for r in rows if r["event"] == "step" and r["time"] < killed_at)
        last = max(((c["epoch"], c["batch"]) for c in commits), default=(0, 0))
        steps = victim["steps"]
        result.update({
            "killed": f"rank 1 (pid {victim['pid']}) at epoch {victim['epoch'] + 1}, step {victim['batch']}",
            "recovery_s": after[0]["time"] - killed_at if after else None,
            "size_after": after[-1]["size"] if after else None,
            "epochs_redone": ((done[0] - last[0]) * steps + done[1] - last[1]) / steps if after else None,
        })
    tail = [ln for ln in (out / "job.log").read_text().splitlines() if ln.strip()]
    result["last_line"] = tail[-1][:300] if tail else ""
    return result


def run_restart(data: Path, out: Path, args, kill: bool) -> dict:
    """jobs/train.py --np -2 on the same jets and config; the kill lands in rank 1 during epoch 2."""
    import shutil

    from mlflow.tracking import MlflowClient

    from ucluster.tracking import tracking_uri

    if out.exists():
        shutil.rmtree(out)
    flags = [x for k, v in TINY.items() for x in (f"--{k}", str(v))]
    cmd = [sys.executable, "-m", "jobs.train", "--data", str(data), "--out", str(out), *flags, "--np", "-2",
           "--epochs", str(args.epochs)]
    t0 = time.time()
    job = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    status_file = out / "logs" / "workers" / "rank-1.json"
    killed_at, back_at, victim = None, None, None
    while job.poll() is None and time.time() - t0 < 600:
        try:
            status = json.loads(status_file.read_text())
        except (OSError, ValueError):
            status = None
        if status and status.get("phase") == "epoch":
            if kill and killed_at is None and status.get("epoch", 0) >= 1:
                time.sleep(1.0)  # into the epoch, like the elastic kill (which waits for 1.5 commits)
                victim = json.loads(status_file.read_text())  # the epoch it is in now
                killed_at = _kill_descendant(job, victim["pid"])
            elif killed_at is not None and back_at is None and status.get("attempt", 0) >= 1 \
                    and status["epoch"] >= victim["epoch"]:
                back_at = time.time()
        time.sleep(0.05)
    _, stderr = job.communicate(timeout=60)
    wall = time.time() - t0
    client = MlflowClient(tracking_uri=tracking_uri(out))
    runs = client.search_runs([client.get_experiment_by_name("ucluster").experiment_id])
    metrics = runs[0].data.metrics if runs else {}
    result = {"scenario": "restart from checkpoint (jobs/train.py --np -2)", "rc": job.returncode, "wall_s": wall,
              "finished": bool(runs) and runs[0].info.status == "FINISHED"}
    if killed_at is not None:
        result.update({"killed": f"rank 1 (pid {victim['pid']}) during epoch {victim['epoch'] + 1}",
                       "recovery_s": None if back_at is None else back_at - killed_at,
                       "recovery_logged_s": metrics.get("restart_recovery_seconds"),
                       "size_after": 2, "epochs_redone": metrics.get("restart_epochs_lost")})
    lines = [ln for ln in stderr.splitlines() if ln.startswith(("warning:", "error:"))]
    result["last_line"] = lines[-1][:300] if lines else ""
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "worker":
        return elastic_worker(args)
    work = Path(args.workdir).absolute()
    work.mkdir(parents=True, exist_ok=True)
    data = Path(args.data).absolute() if args.data else work / "jets.parquet"
    if not args.data and not (data / "_ucluster.json").exists():
        from conversion.convert import convert
        from ucluster.sim.pythia_jets import simulate_to_hdf5
        from ucluster.spark import get_spark

        print(f"simulating {args.jets_per_kind} W, Z and top jets each with Pythia ...", flush=True)
        spark = get_spark("ucluster-elastic-study")
        files = simulate_to_hdf5(spark, work / "h5", ["w", "z", "t"], args.jets_per_kind, overwrite=True)
        convert([str(f) for f in files], data, spark=spark, overwrite=True, progress=False, row_group_size=64)
        spark.stop()
    results = []
    plan = [("restart, undisturbed", lambda: run_restart(data, work / "restart0", args, kill=False)),
            ("restart, kill", lambda: run_restart(data, work / "restart1", args, kill=True)),
            ("elastic 2 hosts, undisturbed",
             lambda: run_elastic(data, work / "elastic0", ["localhost:1", "127.0.0.1:1"], args, kill=False)),
            ("elastic 2 hosts, kill",
             lambda: run_elastic(data, work / "elastic2", ["localhost:1", "127.0.0.1:1"], args, kill=True)),
            ("elastic 1 host, kill", lambda: run_elastic(data, work / "elastic1", ["localhost:2"], args, kill=True)),
            ("elastic 1 host + cooldown, kill",
             lambda: run_elastic(data, work / "elastic1c", ["localhost:2"], args, kill=True, cooldown=True))]
    for name, fn in plan:
        print(f"{name} ...", flush=True)
        r = fn()
        r["name"] = name
        results.append(r)
        print("  " + json.dumps(r), flush=True)
    print()
    print(f"{'scenario':<34}{'rc':>4}{'done':>6}{'wall s':>8}{'recover s':>11}{'size after':>12}{'redone ep':>11}")
    for r in results:
        rec = "" if r.get("recovery_s") is None else f"{r['recovery_s']:.1f}"
        redo = "" if r.get("epochs_redone") is None else f"{r['epochs_redone']:.2f}"
        print(f"{r['name']:<34}{r['rc']:>4}{'yes' if r['finished'] else 'no':>6}{r['wall_s']:>8.1f}{rec:>11}"
              f"{str(r.get('size_after', '')):>12}{redo:>11}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
