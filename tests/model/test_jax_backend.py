"""The model and the JAX train step under KERAS_BACKEND=jax (skipped where jax is not installed).

Runs in a subprocess because the Keras backend is fixed when keras is first imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import numpy as np, keras, jax, jax.numpy as jnp
from ucluster.config import ModelConfig
from ucluster.model import build_model, get_centroids
from ucluster.train.engines.jax_local import init_state, make_train_step, write_state_back

assert keras.backend.backend() == "jax"
cfg = ModelConfig(k=4, gap1_channels=4, gap2_channels=4, gap2_heads=2, point_channels=[8, 8], latent_dim=8,
                  head_units=[8], dropout=0.1, attention_dropout=0.1, n_clusters=3)
P, F, C = 12, 5, 4
keras.utils.set_random_seed(0)
model = build_model(cfg, P, F, C)
rng = np.random.default_rng(0)
n_real = np.array([12, 7, 3, 1, 4, 9] * 4)
mask = (np.arange(P)[None] < n_real[:, None]).astype("float32")
features = rng.normal(size=(len(n_real), P, F)).astype("float32") * mask[..., None]
target = rng.integers(0, C, size=len(n_real)).astype("int32")

def predict(m, f):
    return {k: np.asarray(v) for k, v in m({"features": f, "mask": mask}, training=False).items()}

before = predict(model, features)
garbage = features + rng.normal(scale=100.0, size=features.shape).astype("float32") * (1 - mask[..., None])
for key, value in predict(model, garbage).items():
    np.testing.assert_array_equal(value, before[key])

optimizer = keras.optimizers.Adam(1e-2)
step = make_train_step(model, optimizer, beta=0.1, gamma=2.0)
state = init_state(model, optimizer)
batch = {"features": jnp.asarray(features), "mask": jnp.asarray(mask), "target": jnp.asarray(target)}
losses = []
for i in range(40):
    state, metrics = step(state, batch, 1.0 + 0.05 * i)  # alpha changes: must not recompile
    losses.append(float(metrics[0]))
assert metrics.shape == (4,), metrics  # loss, focal, clustering, correct jets
assert all(np.isfinite(losses)), losses
assert losses[-1] < 0.5 * losses[0], losses
if hasattr(step, "_cache_size"):  # private jax API: checked where it exists
    assert step._cache_size() == 1, step._cache_size()

# The model still holds its initial weights (the state was copied, then donated) until written back.
for key, value in predict(model, features).items():
    np.testing.assert_array_equal(value, before[key])
write_state_back(model, optimizer, state)
after = predict(model, features)
trainable, non_trainable, _ = state
expected, _ = model.stateless_call(trainable, non_trainable, {"features": features, "mask": mask}, training=False)
for key in after:
    np.testing.assert_allclose(after[key], np.asarray(expected[key]), rtol=1e-6, atol=1e-6)
assert int(optimizer.iterations.numpy()) == 40
assert not np.allclose(after["logits"], before["logits"])

model.save("roundtrip.keras")
loaded = keras.saving.load_model("roundtrip.keras")
for key, value in predict(loaded, features).items():
    np.testing.assert_allclose(value, after[key], rtol=1e-6, atol=1e-6)
np.testing.assert_array_equal(get_centroids(loaded), get_centroids(model))

# train.balance reaches the compiled step: its clustering figure carries balance * KL(mean assignment || uniform).
# Without dropout (the model has LayerNorm only, no batch statistics) the step's training-mode forward is the
# inference one, so the step's term is exactly balance * the KL of the inference distances.
import dataclasses
from ucluster.model import balance_loss
plain = build_model(dataclasses.replace(cfg, dropout=0.0, attention_dropout=0.0), P, F, C)
plain.set_weights(model.get_weights())  # the trained weights: a KL well above 0
plain_opt = keras.optimizers.Adam(1e-2)
plain_opt.build(plain.trainable_variables)
dist = np.asarray(plain({"features": features, "mask": mask}, training=False)["distances"])
figs = {}
for w in (0.0, 5.0):
    fn = make_train_step(plain, plain_opt, beta=1.0, gamma=2.0, balance=w)
    figs[w] = np.asarray(fn(init_state(plain, plain_opt), batch, 2.0)[1])
kl = float(balance_loss(dist, 2.0))
assert kl > 1e-4, kl
np.testing.assert_allclose(figs[5.0][2] - figs[0.0][2], 5.0 * kl, rtol=1e-3, atol=1e-6)

# model.ssl_method dino through the compiled step: the teacher's EMA and the centre come back in the state
dino = build_model(dataclasses.replace(cfg, ssl_weight=1.0, ssl_method="dino", ssl_prototypes=6,
                                       ssl_teacher_momentum=0.8), P, F, C)
opt = keras.optimizers.Adam(1e-2)
fn = make_train_step(dino, opt, beta=0.0, gamma=2.0)
paths = [v.path for v in dino.non_trainable_variables]
t_index = [i for i, p in enumerate(paths) if p.startswith("teacher_")]
student = {v.path: i for i, v in enumerate(dino.trainable_variables)}
pair = [(student[paths[i][len("teacher_"):]], i) for i in t_index]
c_index = paths.index("ssl_self_distillation/center")
st = init_state(dino, opt)
for _ in range(2):
    before_t = [np.asarray(st[0][s]) for s, _ in pair], [np.asarray(st[1][t]) for _, t in pair]
    center = np.asarray(st[1][c_index])
    st, figures = fn(st, batch, 2.0)
    assert np.isfinite(np.asarray(figures)).all()
    for (s_then, t_then), (_, t) in zip(zip(*before_t), pair):
        np.testing.assert_allclose(np.asarray(st[1][t]), 0.8 * t_then + 0.2 * s_then, rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(st[1][c_index]), center)
assert max(float(np.abs(np.asarray(st[0][s]) - np.asarray(st[1][t])).max()) for s, t in pair) > 0

# train.cluster_objective self_label: a batch's cluster_target reaches the compiled step, whose clustering figure
# is then the mean cross entropy over the labelled jets (unlabelled: -1) instead of deep k-means
from ucluster.model import self_label_loss
labels = np.array([0, 1, 2, -1] * 6, "int32")
fn = make_train_step(plain, plain_opt, beta=1.0, gamma=2.0)
fig = np.asarray(fn(init_state(plain, plain_opt), {**batch, "cluster_target": jnp.asarray(labels)}, 2.0)[1])
want = float(np.asarray(self_label_loss(dist, 2.0, labels)).sum()) / (labels >= 0).sum()
np.testing.assert_allclose(fig[2], want, rtol=1e-4, atol=1e-6)
assert abs(fig[2] - figs[0.0][2]) > 1e-3  # not the deep k-means figure
print("JAX-OK")
"""


def test_model_and_train_step_under_jax(tmp_path):
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "JAX-OK" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-5000:]
