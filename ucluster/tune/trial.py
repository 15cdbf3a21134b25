"""One trial rung: a Spark task that trains in a fresh Python process, and that process's entry point.

The Spark task (:func:`run_trial_task`) does not import TensorFlow: it starts a Python process that runs
:func:`main` on a spec file and writes a result file, and waits. TensorFlow and Horovod then start in a clean
process instead of a forked PySpark worker (which may have inherited locks, threads or a half-initialised
TensorFlow), a crash or out-of-memory kill loses one trial rather than the executor's Python worker, and
the trial's log goes to its own file. In that process ``hvd.init()`` without a launcher is a world of size 1,
so :func:`ucluster.train.trainer.train_worker` runs unchanged: the same code path as ``jobs/train.py``,
checkpoints included, which is what lets a promoted trial resume for its next rung.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# Chosen on the validation split, so that the test split still gives an unbiased figure for the winner.
OBJECTIVE = "val_cluster_acc"
REPORTED = ("val_nmi", "val_ari", "test_cluster_acc", "test_nmi", "test_ari", "test_class_acc")
# Not `-m ucluster.tune.trial`: the package imports this module first, and runpy would then run a second copy.
_ENTRY = "import sys; from ucluster.tune.trial import main; sys.exit(main(sys.argv[1:]))"


def _die_with_parent() -> None:
    """Linux: end the trial if the Spark worker that started it dies (a cancelled job leaves no orphan)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort only
        pass


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def run_trial_task(item: dict[str, Any]) -> dict[str, Any]:
    """Spark task: run one rung of one trial in a subprocess; never raises (a failure is a result)."""
    import ucluster

    t0 = time.time()
    trial_dir = Path(item["dir"])
    trial_dir.mkdir(parents=True, exist_ok=True)
    rung = item["rung"]
    spec, result = trial_dir / f"rung{rung}.spec.json", trial_dir / f"rung{rung}.result.json"
    log = trial_dir / "trial.log"
    spec.write_text(json.dumps(item))
    result.unlink(missing_ok=True)
    # No Horovod launcher variables: in the trial process hvd.init() must be a world of its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOROVOD_")}
    package_root = str(Path(ucluster.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    env["MLFLOW_TRACKING_URI"] = item["tracking_uri"]
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    timeout = item.get("timeout") or None
    out: dict[str, Any]
    with open(log, "ab") as fh:
        fh.write(f"=== trial {item['number']} rung {rung} on {socket.gethostname()} at {time.ctime()}\n".encode())
        fh.flush()
        try:
            proc = subprocess.run([sys.executable, "-c", _ENTRY, str(spec), str(result)],
                                  stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                  timeout=timeout, preexec_fn=_die_with_parent)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = None
    if result.is_file():
        out = json.loads(result.read_text())
    elif rc is None:
        out = {"ok": False, "error": f"timed out after {timeout} s (see {log})"}
    else:
        out = {"ok": False, "error": f"trial process exited with status {rc} ({_last_line(log)}); see {log}"}
    out.update(number=item["number"], rung=rung, host=socket.gethostname(), seconds=time.time() - t0)
    return out


def run_rung(item: dict[str, Any]) -> dict[str, Any]:
    """In the trial process: preflight, train (or resume) to ``train.epochs``, read back the metric history."""
    from mlflow.tracking import MlflowClient

    from ucluster.config import config_from_dict
    from ucluster.train.trainer import preflight, train_worker

    cfg = config_from_dict(item["config"], source=f"trial {item['number']}")
    preflight(cfg, 1)
    Path(cfg.run.output_dir).mkdir(parents=True, exist_ok=True)
    final = train_worker(cfg.to_dict())
    client = MlflowClient(tracking_uri=item["tracking_uri"])
    run_id = final["run_id"]
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, OBJECTIVE))
    client.set_tag(run_id, "ucluster.tune.trial", str(item["number"]))
    client.set_tag(run_id, "ucluster.tune.epochs", str(cfg.train.epochs))
    metrics = {k: float(v) for k, v in final.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return {"ok": True, "run_id": run_id, "metrics": metrics, "history": history, "epochs": cfg.train.epochs}


def main(argv: list[str] | None = None) -> int:
    from ucluster.atomic import atomic_write_bytes
    from ucluster.config import ConfigError
    from ucluster.data.schema import DatasetError
    from ucluster.train.trainer import TrainingError

    spec_path, result_path = argv if argv is not None else sys.argv[1:]
    item = json.loads(Path(spec_path).read_text())
    try:
        out = run_rung(item)
    except (ConfigError, DatasetError, TrainingError) as exc:
        out = {"ok": False, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
    except Exception as exc:  # noqa: BLE001 - reported to the driver as this trial's failure
        import traceback

        traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        out = {"ok": False, "error": f"{type(exc).__name__}: {first}"[:300]}
    atomic_write_bytes(result_path, json.dumps(out).encode())
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
