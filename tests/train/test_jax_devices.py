"""Data parallelism of the JAX engine over local devices, on CPU with faked devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``), in subprocesses because the Keras backend and the JAX
device count are fixed when keras and jax are first imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from ucluster.data.loader import JetStream
from ucluster.tracking import tracking_uri
from ucluster.train import schedule

REPO = Path(__file__).resolve().parents[2]

# One step of the same global batch on 1 device and split over 2 devices, from the same initial weights and
# optimizer state, dropout on: the weights after the step (and after a second one) must agree.
SAME_STEP = r"""
import numpy as np, jax, keras
from ucluster.config import ModelConfig
from ucluster.model import build_model
from ucluster.train.engines.jax_local import JaxLocalEngine

assert len(jax.local_devices()) == 2, jax.local_devices()
cfg = ModelConfig(k=4, gap1_channels=4, gap2_channels=4, gap2_heads=2, point_channels=[8, 8], latent_dim=8,
                  head_units=[8], dropout=0.1, attention_dropout=0.1, n_clusters=3,
                  centroid_step_scale=1.0)  # unscaled weights: the tolerances below are float32 reduction-order noise
P, F, C, B = 12, 5, 4, 16
rng = np.random.default_rng(0)
batches = []
for _ in range(2):
    n_real = rng.integers(1, P + 1, size=B)
    mask = (np.arange(P)[None] < n_real[:, None]).astype("float32")
    feats = (rng.normal(size=(B, P, F)) * mask[..., None]).astype("float32")
    batches.append({"features": feats, "mask": mask, "target": rng.integers(0, C, size=B).astype("int32")})

def train(devices):
    keras.utils.set_random_seed(0)
    model = build_model(cfg, P, F, C)
    optimizer = keras.optimizers.Adam(1e-2)
    optimizer.build(model.trainable_variables)
    engine = JaxLocalEngine(devices)
    engine.setup(model, optimizer, 2.0, None)
    engine.set_lr(3e-2)
    before = [np.array(w) for w in model.get_weights()]
    figures = []
    for batch in batches:
        figures.append(np.asarray(engine.step(engine.put(batch), 1.5, 0.1)))
        engine.pull()
        figures.append([np.array(w) for w in model.get_weights()])
    logits = engine.predict(batches[0]["features"][:7], batches[0]["mask"][:7])[0]  # 7: padded on 2 devices
    return engine, before, figures, logits

one, before1, out1, logits1 = train(1)
two, before2, out2, logits2 = train(2)
assert one.replicas == 1 and two.replicas == 2
sharding = two.put(batches[0])["features"].sharding
assert len(sharding.device_set) == 2 and not sharding.is_fully_replicated, sharding
for a, b in zip(before1, before2):
    np.testing.assert_array_equal(a, b)
moved = False
for step in range(2):
    np.testing.assert_allclose(out1[2 * step], out2[2 * step], rtol=1e-4, atol=1e-5)  # loss, ..., correct jets
    for w0, a, b in zip(before1, out1[2 * step + 1], out2[2 * step + 1]):
        # weights: Adam divides by sqrt(v), which amplifies the reduction-order noise of small gradients (seen
        # up to 3e-5 on an AMD EPYC); a wrong split or mask would move a weight by up to the lr (3e-2) per step
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
        moved |= not np.allclose(a, w0)
assert moved, "the step changed no weight"
assert logits1.shape == logits2.shape == (7, C)
np.testing.assert_allclose(logits1, logits2, rtol=1e-4, atol=1e-5)
print("SAME-STEP-OK")
"""


# jobs.train.main on the arguments before --then, then on those after it; exits with the first one's status.
TWO_JOBS = """
import sys
from jobs.train import main
cut = sys.argv.index("--then")
first = main(sys.argv[1:cut])
print("SECOND-EXIT", main(sys.argv[cut + 1:]), flush=True)
sys.exit(first)
"""


def _env(devices: int) -> dict:
    return {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
            "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def test_two_devices_take_the_step_of_one_at_equal_global_batch(tmp_path):
    pytest.importorskip("jax")
    proc = subprocess.run([sys.executable, "-c", SAME_STEP], cwd=tmp_path, env=_env(2), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "SAME-STEP-OK" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-5000:]


def test_training_on_two_fake_devices_through_the_loop(tiny_config, tmp_path, monkeypatch):
    """`jobs/train.py --engine jax --devices 2`: each step takes 2 x train.batch_size jets, the lr is scaled by
    the 2 devices, rank 0 logs one finished MLflow run and saves the model; more devices than exist is a one-line
    error."""
    pytest.importorskip("jax")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run"
    flags = []
    for key, value in tiny_config.flat().items():
        if key.startswith(("data.", "model.", "train.")):
            flags += [f"--{key}", ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    args = ["--engine", "jax", "--out", str(out), "--run.progress", "false", *flags]
    # The job's entry point (jobs.train.main, what `python -m jobs.train` runs) twice in one fresh process: the
    # 2-device training, then the same job asking for a device more than exist (one JAX start-up, not two).
    proc = subprocess.run([sys.executable, "-c", TWO_JOBS, *args, "--devices", "2", "--then", *args, "--out",
                           str(tmp_path / "bad"), "--devices", "3"], cwd=REPO, env=_env(2), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    second = [ln for ln in proc.stdout.splitlines() if ln.startswith("SECOND-EXIT ")]
    assert second and second[0] != "SECOND-EXIT 0" and "run.devices = 3" in proc.stderr, proc.stderr[-3000:]
    assert not (tmp_path / "bad" / "model.keras").exists()
    result = json.loads(proc.stdout[proc.stdout.index("{"):proc.stdout.rindex("}") + 1])
    assert Path(result["model_path"]).is_file()
    client = MlflowClient(tracking_uri=tracking_uri(str(out)))
    run = client.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    B = tiny_config.train.batch_size
    assert run.data.params["devices"] == "2" and run.data.params["global_batch"] == str(2 * B)
    lr = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "lr"))
    expected = [schedule.learning_rate(tiny_config.train, e, 2) for e in range(tiny_config.train.epochs)]
    assert [v for _, v in lr] == pytest.approx(expected, rel=1e-6)
    assert 1 / 3 - 1e-9 <= result["test_cluster_acc"] <= 1
    selected = JetStream(tiny_config, "train").selected_rows()  # one process: one shard, split over 2 devices
    assert int(run.data.params["steps_per_epoch"]) == selected // (2 * B) >= 1
