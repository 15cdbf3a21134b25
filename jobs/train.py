"""Train UCluster (ABCnet pretraining -> k-means -> deep k-means): data-parallel with Horovod, or on one GPU.

    spark-submit jobs/train.py --data data/jets.parquet --np 2
    python -m jobs.train --data data/jets.parquet --np -2 --train.epochs 10
    python -m jobs.train --config conf/demo.yaml --out runs/demo/train --resume
    python -m jobs.train --data data/jets.parquet --engine jax        # one process on every local GPU (JAX)
    python -m jobs.train --data data/jets.parquet --engine jax --devices 1   # ... on one of them
    spark-submit jobs/train.py --data data/jets.parquet --np 2 --engine tf_distribute   # no Horovod needed

--np follows HorovodRunner: < 0 starts |np| processes on this machine, > 0 starts np Spark tasks.
Any config field can be overridden with --section.field VALUE (see conf/ucluster.yaml).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of job logs

if __package__ in (None, ""):  # run as a file by spark-submit: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ucluster.config import ConfigError, add_config_arguments, load_config, overrides_from_args  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="YAML config (default conf/ucluster.yaml)")
    p.add_argument("--data", dest="cfg__data__path", default=None, help="Parquet dataset (data.path)")
    p.add_argument("--np", dest="cfg__run__np", default=None, help="workers, HorovodRunner meaning (run.np)")
    p.add_argument("--out", dest="cfg__run__output_dir", default=None, help="output directory (run.output_dir)")
    p.add_argument("--epochs", dest="cfg__train__epochs", default=None, help="total epochs (train.epochs)")
    p.add_argument("--engine", dest="cfg__run__engine", default=None,
                   help="horovod (TensorFlow + Horovod workers), tf_distribute (TensorFlow MultiWorkerMirrored"
                        "Strategy, no Horovod), auto (Horovod if importable, else tf_distribute) or jax (local "
                        "devices) (run.engine)")
    p.add_argument("--devices", dest="cfg__run__devices", default=None,
                   help="engine jax: local devices to train on, data-parallel; 0 = all (run.devices)")
    p.add_argument("--supervised", action="store_true",
                   help="train on the true labels (model.target=truth): the supervised ceiling of the same network")
    p.add_argument("--resume", action="store_true", help="continue the run checkpointed in the output directory")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    add_config_arguments(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = overrides_from_args(args)
    if args.resume:
        overrides["run.resume"] = True
    if args.supervised:
        overrides["model.target"] = "truth"
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.print_config:  # credentials in run.tracking_uri masked: consoles end up in CI logs and tickets
        print(cfg.to_yaml(redacted=True))
        return 0
    if cfg.run.engine == "jax":  # the Keras backend is fixed when keras is first imported
        os.environ["KERAS_BACKEND"] = "jax"
    from ucluster.data.schema import DatasetError
    from ucluster.distributed import LaunchError
    from ucluster.redact import redact_text
    from ucluster.tracking import ui_hint
    from ucluster.train.checkpoint import CheckpointError
    from ucluster.train.supervisor import JobFailed
    from ucluster.train.trainer import TrainingError, train

    try:
        result = train(cfg)
    except JobFailed as exc:  # the workers ran and failed for good: one line, the traceback is in the log
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    except (TrainingError, DatasetError, LaunchError, CheckpointError) as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in result.items() if k != "history"}, indent=2, default=str))
    print(f"MLflow run {result['run_id']}: {ui_hint(cfg.run.output_dir, cfg.run.tracking_uri)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
