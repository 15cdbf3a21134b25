"""Metrics survive an MLflow outage: buffered in a local file while the store is down, replayed when it is back.

Rank 0's tracker sends every epoch's metrics through :class:`MetricsFallback`. When a call fails (server down,
network gone), training continues: the metrics are appended to ``<output_dir>/mlflow-fallback/<run id>.jsonl``
and the user is told so, once, with the path. Every ``RETRY_S`` seconds the next call tries the store again and,
if it answers, first replays the buffer. What is still buffered at the end (with the final figures, when even
the end of the run could not be recorded) is replayed by ``python -m ucluster.train.fallback --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ucluster.redact import redact_text

RETRY_S = 30.0
FALLBACK_DIR = "mlflow-fallback"


def fallback_path(output_dir: str | Path, run_id: str) -> Path:
    return Path(output_dir) / FALLBACK_DIR / f"{run_id}.jsonl"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact_text(text.splitlines()[0] if text else type(exc).__name__)[:300]


class MetricsFallback:
    def __init__(self, output_dir: str | Path, run_id: str, uri: str):
        self.output_dir, self.run_id, self.uri = output_dir, run_id, redact_text(uri)
        self.path = fallback_path(output_dir, run_id)
        self.down_since: float | None = None
        self.last_try = 0.0

    def _append(self, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()

    def log(self, metrics: dict, step: int, send: Callable[[dict, int], None]) -> None:
        """``send(metrics, step)`` to MLflow, or buffer them locally if the store does not answer."""
        record = {"metrics": metrics, "step": step, "timestamp": int(time.time() * 1000)}
        if self.down_since is not None and time.time() - self.last_try < RETRY_S:
            self._append(record)
            return
        try:
            if self.path.is_file():
                replay(self.path, self.run_id, None)
            send(metrics, step)
        except Exception as exc:  # noqa: BLE001 - any failure to record must not stop training
            self.mark_down(exc)
            self._append(record)
            return
        if self.down_since is not None:
            print(f"MLflow at {self.uri} answers again: buffered metrics replayed into run {self.run_id}", flush=True)
            self.down_since = None

    def mark_down(self, exc: BaseException) -> None:
        """The store did not answer: buffer until ``RETRY_S`` has passed; tell the user once, with the path."""
        self.last_try = time.time()
        if self.down_since is None:
            self.down_since = self.last_try
            print(f"warning: MLflow at {self.uri} is unreachable ({_first_line(exc)}); training continues and "
                  f"metrics are buffered in {self.path} (replayed when it is back, or run: python -m "
                  f"ucluster.train.fallback --out {self.output_dir})", flush=True)  # stdout reaches the console

    def pending_finish(self, final: dict, model_path: str) -> None:
        """The run could not be ended in MLflow: keep the final figures so that the replay can end it."""
        figures = {f"final_{k}": v for k, v in final.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        self._append({"finish": {"metrics": figures, "model_path": model_path}, "timestamp": int(time.time() * 1000)})
        print(f"warning: MLflow at {self.uri} is unreachable at the end of training: the model is in {model_path}, "
              f"the final figures are buffered in {self.path}; record them with: python -m ucluster.train.fallback "
              f"--out {self.output_dir}", flush=True)


def replay(path: Path, run_id: str, client=None) -> int:
    """Send a buffer file's metrics (and a pending end of run) to MLflow; the file is removed once sent.
    Returns the number of metric values sent."""
    import math

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient()
    sent, finish = 0, None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    batch: list = []
    for rec in records:
        if "finish" in rec:
            finish = rec
            continue
        batch += [Metric(k, float(v), rec["timestamp"], rec["step"]) for k, v in rec["metrics"].items()
                  if isinstance(v, int | float) and math.isfinite(v)]
    if finish:
        batch += [Metric(k, float(v), finish["timestamp"], 0) for k, v in finish["finish"]["metrics"].items()
                  if math.isfinite(v)]
    for i in range(0, len(batch), 900):  # MLflow accepts at most 1000 metrics per batch
        client.log_batch(run_id, metrics=batch[i:i + 900])
    sent = len(batch)
    if finish:
        model = finish["finish"].get("model_path")
        if model and Path(model).is_file():
            client.log_artifact(run_id, model, "model")
        client.set_terminated(run_id, "FINISHED")
    done = path.with_suffix(".replayed")
    path.replace(done)
    return sent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Replay metrics buffered while MLflow was unreachable.")
    p.add_argument("--out", required=True, help="the training output directory (run.output_dir)")
    p.add_argument("--tracking-uri", default="", help="MLflow store (default: $MLFLOW_TRACKING_URI or the run's)")
    args = p.parse_args(argv)
    import mlflow

    from ucluster.tracking import tracking_uri

    files = sorted((Path(args.out) / FALLBACK_DIR).glob("*.jsonl"))
    if not files:
        print(f"nothing to replay in {Path(args.out) / FALLBACK_DIR}")
        return 0
    mlflow.set_tracking_uri(tracking_uri(args.out, args.tracking_uri))
    for f in files:
        try:
            n = replay(f, f.stem)
        except Exception as exc:  # noqa: BLE001
            print(f"error: {f}: could not replay into MLflow ({_first_line(exc)}); try again when it is reachable",
                  file=sys.stderr)
            return 2
        print(f"replayed {n} metric values into run {f.stem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
