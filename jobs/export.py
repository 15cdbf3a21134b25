"""Export a trained UCluster model (.keras + TensorFlow SavedModel) and optionally register it in MLflow.

    python -m jobs.export --run <run id> --out exports/ucluster-v1 --register-name ucluster
    python -m jobs.export --run runs/train/model.keras --out exports/local --alpha 9

--run takes what jobs/assign.py's --model takes (runs:/<id>, a run id, a .keras file or its directory).
The output directory holds model.keras, saved_model/, ucluster_model.json and config.yaml; docs/serving.md
shows how to load each. With --register-name the export is logged to the run (artifact path export/) and a
new version of that registered model is created, where the tracking store has a model registry.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="runs:/<run id>, a run id, a .keras file or its directory")
    p.add_argument("--out", required=True, help="export directory to create")
    p.add_argument("--register-name", default=None, help="registered model name in the MLflow model registry")
    p.add_argument("--alpha", type=float, default=None, help="α baked into the soft assignment (default: the run's)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export directory")
    p.add_argument("--tracking-uri", default="", help="MLflow store (URI or a training --out directory)")
    p.add_argument("--experiment", default="ucluster", help="experiment of the run created for a local model")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ucluster.inference import InferenceError
    from ucluster.inference.export import export_model
    from ucluster.inference.model_source import resolve_model

    if os.path.exists(args.out) and not args.overwrite:  # before any download
        print(f"error: {os.path.abspath(args.out)}: output already exists (pass --overwrite to replace it)",
              file=sys.stderr)
        return 2
    try:
        model = resolve_model(args.run, args.tracking_uri)
        result = export_model(model, args.out, overwrite=args.overwrite, alpha=args.alpha,
                              register_name=args.register_name, tracking=args.tracking_uri,
                              experiment=args.experiment)
    except InferenceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"exported {model.description} (alpha {result.alpha:g}) to {result.out}: model.keras, saved_model/")
    if result.registered:
        print(f"registered as {result.registered} (run {result.run_id})")
    elif result.note:
        print(f"warning: {result.note}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
