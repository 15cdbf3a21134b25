"""ABCnet model: shapes, padding never leaking, per-jet independence, k-NN graphs, training, saving."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from ucluster.config import ModelConfig
from ucluster.model import (
    KNNGraph,
    build_model,
    deep_kmeans_loss,
    focal_loss,
    get_centroids,
    get_input_scaling,
    latent_model,
    set_centroids,
    set_input_scaling,
)

P, F, N_CLASSES = 12, 5, 4
N_REAL = [12, 7, 3, 1, 4, 9]  # includes jets with fewer real particles than k


def small_config(**overrides) -> ModelConfig:
    base = dict(
        k=4, gap1_channels=4, gap2_channels=4, gap2_heads=2, point_channels=[8, 8], latent_dim=8,
        head_units=[8], dropout=0.1, attention_dropout=0.1, n_clusters=3,
    )
    base.update(overrides)
    return ModelConfig(**base)


def make_jets(n_real: list[int], n_particles: int = P, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random jets with real particles first and zero padding."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(len(n_real), n_particles, F)).astype("float32")
    mask = (np.arange(n_particles)[None, :] < np.asarray(n_real)[:, None]).astype("float32")
    return features * mask[..., None], mask


def predict(model: keras.Model, features: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    out = model({"features": features, "mask": mask}, training=False)
    return {k: np.asarray(ops.convert_to_numpy(v)) for k, v in out.items()}


SCALING = (np.linspace(-1.0, 1.0, F), np.linspace(0.5, 2.0, F))  # non-trivial input statistics


@pytest.fixture(scope="module")
def model() -> keras.Model:
    """Standardised inputs (non-trivial statistics) and max+mean pooling: every padding test runs through both."""
    keras.utils.set_random_seed(1)
    m = build_model(small_config(), P, F, N_CLASSES)
    set_input_scaling(m, *SCALING)
    return m


def assert_outputs_close(a: dict, b: dict, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=rtol, atol=atol, err_msg=key)


def test_output_shapes_and_dtypes(model):
    features, mask = make_jets(N_REAL)
    out = predict(model, features, mask)
    assert set(out) == {"logits", "latent", "distances"}
    assert out["logits"].shape == (len(N_REAL), N_CLASSES)
    assert out["latent"].shape == (len(N_REAL), 8)
    assert out["distances"].shape == (len(N_REAL), 3)
    for value in out.values():
        assert value.dtype == np.float32
        assert np.isfinite(value).all()
    assert (out["distances"] >= 0).all()
    latent = np.asarray(ops.convert_to_numpy(latent_model(model)({"features": features, "mask": mask})))
    np.testing.assert_allclose(latent, out["latent"], rtol=1e-6, atol=1e-6)


def test_garbage_in_padded_slots_changes_nothing(model):
    features, mask = make_jets(N_REAL)
    garbage = features.copy()
    rng = np.random.default_rng(5)
    padded = mask == 0
    garbage[padded] = rng.normal(scale=1e3, size=(padded.sum(), F)).astype("float32")
    garbage[1, -1, 0] = np.nan  # even NaN/inf in the padding must not leak
    garbage[2, -1, 1] = np.inf
    assert_outputs_close(predict(model, features, mask), predict(model, garbage, mask), rtol=0, atol=0)


def test_number_of_padded_slots_changes_nothing(model):
    """The same jets padded to 12 or to 20 particles give the same outputs (padding is ignored, not zeroed in)."""
    longer = build_model(small_config(), None, F, N_CLASSES)  # any number of particles
    longer.set_weights(model.get_weights())
    features, mask = make_jets(N_REAL)
    features20 = np.zeros((len(N_REAL), 20, F), "float32")
    features20[:, :P] = features
    mask20 = np.zeros((len(N_REAL), 20), "float32")
    mask20[:, :P] = mask
    assert_outputs_close(predict(model, features, mask), predict(longer, features20, mask20))


def test_jet_outputs_do_not_depend_on_the_rest_of_the_batch(model):
    features, mask = make_jets(N_REAL)
    together = predict(model, features, mask)
    perm = np.random.default_rng(3).permutation(len(N_REAL))
    permuted = predict(model, features[perm], mask[perm])
    for i in range(len(N_REAL)):
        alone = predict(model, features[i : i + 1], mask[i : i + 1])
        for key in together:
            np.testing.assert_allclose(alone[key][0], together[key][i], rtol=1e-5, atol=1e-5, err_msg=key)
    for key in together:
        np.testing.assert_allclose(permuted[key], together[key][perm], rtol=1e-5, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("n_coords", [2, None])
def test_knn_graph_only_uses_real_neighbours(n_coords):
    k = 4
    features, mask = make_jets(N_REAL, seed=7)
    idx, valid = KNNGraph(k, n_coords=n_coords)([features, mask])
    idx, valid = np.asarray(ops.convert_to_numpy(idx)), np.asarray(ops.convert_to_numpy(valid))
    assert idx.shape == valid.shape == (len(N_REAL), P, k)
    coords = features[..., :2] if n_coords else features
    for b, n in enumerate(N_REAL):
        for i in range(n):
            row = idx[b, i]
            assert row[0] == i, "the point itself is its first neighbour"
            if n >= k:
                assert valid[b, i].all()
                assert (row < n).all(), "a padded particle was chosen while real ones were left"
                d = ((coords[b, :n] - coords[b, i]) ** 2).sum(-1)
                np.testing.assert_allclose(np.sort(d[row]), np.sort(d)[:k], rtol=1e-4, atol=1e-5)
            else:
                assert valid[b, i, :n].all() and not valid[b, i, n:].any()
                assert sorted(row[:n]) == list(range(n)), "all real particles are neighbours"
                assert (row[n:] == i).all(), "invalid slots point at the particle itself"


def test_padded_neighbours_are_ignored_when_fewer_than_k_particles(model):
    """A jet of 3 particles gives the same outputs with k=4 (one padded neighbour, excluded) as with k=3."""
    k3 = build_model(small_config(k=3), P, F, N_CLASSES)
    k3.set_weights(model.get_weights())
    features, mask = make_jets([3, 2, 1], seed=11)
    assert_outputs_close(predict(model, features, mask), predict(k3, features, mask))


def test_k_larger_than_particles_is_capped():
    m = build_model(small_config(k=50), P, F, N_CLASSES)
    features, mask = make_jets(N_REAL)
    out = predict(m, features, mask)
    assert all(np.isfinite(v).all() for v in out.values())


def test_distances_and_centroids(model):
    features, mask = make_jets(N_REAL)
    old = get_centroids(model)
    try:
        centroids = np.random.default_rng(2).normal(size=old.shape).astype("float32")
        set_centroids(model, centroids)
        # stored as centroids / model.centroid_step_scale: equal up to float32 rounding
        np.testing.assert_allclose(get_centroids(model), centroids, rtol=1e-6, atol=1e-7)
        out = predict(model, features, mask)
        expected = ((out["latent"][:, None, :] - centroids[None]) ** 2).sum(-1)
        np.testing.assert_allclose(out["distances"], expected, rtol=1e-5, atol=1e-5)
        with pytest.raises(ValueError):
            set_centroids(model, centroids[:, :-1])
    finally:
        set_centroids(model, old)
    assert [w.path for w in model.get_layer("clustering").weights] == ["clustering/centroids"]


def test_no_batch_normalization_anywhere(model):
    def walk(layer):
        yield layer
        for sub in getattr(layer, "_layers", []):
            yield from walk(sub)

    names = {type(layer).__name__ for top in model.layers for layer in walk(top)}
    assert "BatchNormalization" not in names
    assert "LayerNormalization" in names


def test_save_and_load_round_trip(model, tmp_path):
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    features, mask = make_jets(N_REAL)
    assert_outputs_close(predict(model, features, mask), predict(loaded, features, mask), rtol=0, atol=0)
    np.testing.assert_array_equal(get_centroids(loaded), get_centroids(model))
    for saved, expected in zip(get_input_scaling(loaded), SCALING, strict=True):  # the statistics travel too
        np.testing.assert_allclose(saved, expected, rtol=1e-7)


def test_input_scaling_standardises_real_particles_only(model):
    features, mask = make_jets(N_REAL)
    layer = model.get_layer("input_scaling")
    out = np.asarray(layer([features, mask]))
    expected = (features - SCALING[0]) / SCALING[1] * mask[..., None]
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="expected"):
        set_input_scaling(model, np.zeros(F + 1), np.ones(F + 1))
    with pytest.raises(ValueError, match="positive scale"):
        set_input_scaling(model, np.zeros(F), np.zeros(F))
    plain = build_model(small_config(standardize=False, pooling="max"), P, F, N_CLASSES)
    assert get_input_scaling(plain) is None and "mean_pool" not in {layer.name for layer in plain.layers}


def test_gradient_steps_reduce_the_loss():
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("GradientTape training test runs under the TensorFlow backend")
    keras.utils.set_random_seed(4)
    m = build_model(small_config(dropout=0.0, attention_dropout=0.0), P, F, N_CLASSES)
    features, mask = make_jets(N_REAL * 3, seed=9)
    labels = np.random.default_rng(9).integers(0, N_CLASSES, size=len(features))
    optimizer = keras.optimizers.Adam(1e-2)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            out = m({"features": features, "mask": mask}, training=True)
            loss = tf.reduce_mean(focal_loss(labels, out["logits"], 2.0))
            loss += 0.1 * tf.reduce_mean(deep_kmeans_loss(out["distances"], 1.0))
        grads = tape.gradient(loss, m.trainable_variables)
        optimizer.apply_gradients(zip(grads, m.trainable_variables, strict=True))
        return loss, grads

    losses = []
    for _ in range(40):
        loss, grads = step()
        assert all(np.isfinite(g.numpy()).all() for g in grads)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0], losses


def test_l2_latent_norm_clusters_on_the_unit_sphere(tmp_path):
    keras.utils.set_random_seed(3)
    m = build_model(small_config(latent_norm="l2"), P, F, N_CLASSES)
    features, mask = make_jets([5, 12, P])
    out = predict(m, features, mask)
    np.testing.assert_allclose(np.linalg.norm(out["latent"], axis=1), 1.0, rtol=1e-5)
    centroids = get_centroids(m)
    expected = ((out["latent"][:, None, :] - centroids[None]) ** 2).sum(-1)
    np.testing.assert_allclose(out["distances"], expected, rtol=1e-4, atol=1e-5)
    m.save(tmp_path / "l2.keras")
    again = keras.saving.load_model(tmp_path / "l2.keras")
    assert_outputs_close(predict(again, features, mask), out)


def test_centroid_step_scale_slows_only_the_centroids_and_round_trips(tmp_path):
    """model.centroid_step_scale: same distances for the same centroids, an Adam step moves the centroids s times
    as far (the network as before), and the saved model (Keras load and the archive reader) gives μ back."""
    from ucluster.inference.model_source import keras_centroids, keras_info

    features, mask = make_jets(N_REAL)
    target = np.array([0, 1, 2, 3, 0, 1])
    centroids = np.random.default_rng(3).normal(size=(3, 8)).astype("float32")
    moved, outs = {}, {}
    for scale in (1.0, 0.1):
        keras.utils.set_random_seed(4)
        m = build_model(small_config(dropout=0.0, attention_dropout=0.0, centroid_step_scale=scale), P, F, N_CLASSES)
        set_centroids(m, centroids)
        np.testing.assert_allclose(get_centroids(m), centroids, rtol=1e-6)
        outs[scale] = predict(m, features, mask)
        opt = keras.optimizers.Adam(1e-2)
        with_grad = _one_adam_step(m, opt, features, mask, target)
        moved[scale] = float(np.abs(get_centroids(m) - centroids).max())
        assert with_grad
        if scale != 1.0:
            path = tmp_path / "scaled.keras"
            m.save(path)
            np.testing.assert_allclose(get_centroids(keras.saving.load_model(path)), get_centroids(m), rtol=1e-6)
            np.testing.assert_allclose(keras_centroids(path, keras_info(path)), get_centroids(m), rtol=1e-6)
    assert_outputs_close(outs[1.0], outs[0.1])
    assert moved[0.1] == pytest.approx(0.1 * moved[1.0], rel=0.05)


def _one_adam_step(model, optimizer, features, mask, target) -> bool:
    import tensorflow as tf

    with tf.GradientTape() as tape:
        out = model({"features": features, "mask": mask}, training=True)
        loss = ops.mean(focal_loss(target, out["logits"], 2.0)) + ops.mean(deep_kmeans_loss(out["distances"], 2.0))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply(grads, model.trainable_variables)
    return all(g is not None for g in grads)


def test_self_supervised_views_train_on_two_augmented_copies_and_predict_on_the_jet(tmp_path):
    """With model.ssl_weight the training call sees two views per jet (rotated, shifted, soft particles dropped,
    the leading one always kept); inference sees the jet itself and the saved model predicts the same."""
    from ucluster.model import JetViews

    m = build_model(small_config(ssl_weight=1.0, ssl_drop=0.3), P, F, N_CLASSES)
    features, mask = make_jets(N_REAL)
    out = m({"features": features, "mask": mask}, training=True)
    assert tuple(out["logits"].shape) == (2 * len(N_REAL), N_CLASSES)
    assert tuple(out["distances"].shape) == (2 * len(N_REAL), 3)
    ssl = np.asarray(ops.convert_to_numpy(out["ssl_loss"]))
    assert ssl.shape == (len(N_REAL),) and np.all(np.isfinite(ssl)) and np.all(ssl > 0)
    inference = predict(m, features, mask)
    assert tuple(inference["logits"].shape) == (len(N_REAL), N_CLASSES)
    path = tmp_path / "ssl.keras"
    m.save(path)
    assert_outputs_close(inference, predict(keras.saving.load_model(path), features, mask), rtol=0, atol=0)

    # a rotation without shift or drop keeps every pairwise (deta, dphi) distance and every other feature
    views = JetViews(shift=0.0, drop=0.0, seed=1)
    x, v_mask = (np.asarray(ops.convert_to_numpy(t)) for t in views([features, mask], training=True))
    assert x.shape == (2 * len(N_REAL), P, F) and np.array_equal(v_mask, np.concatenate([mask, mask]))
    src = np.concatenate([features, features]) * np.concatenate([mask, mask])[..., None]
    dist = lambda a: np.linalg.norm(a[:, :, None, :2] - a[:, None, :, :2], axis=-1)  # noqa: E731
    np.testing.assert_allclose(dist(x), dist(src), atol=1e-4)
    np.testing.assert_allclose(x[..., 2:], src[..., 2:], atol=1e-6)
    assert not np.allclose(x[..., :2], src[..., :2])  # rotated

    dropping = JetViews(shift=0.0, drop=0.5, seed=2)
    _, d_mask = (np.asarray(ops.convert_to_numpy(t)) for t in dropping([features, mask], training=True))
    both = np.concatenate([mask, mask])
    assert np.all(d_mask <= both) and np.all(d_mask[:, 0] == 1) and d_mask.sum() < both.sum()


def test_self_distillation_teacher_follows_the_student_and_is_not_trained(tmp_path):
    """model.ssl_method dino: the teacher starts as the student, takes no gradient, and after each training call
    moves (1 - momentum) of the way to the student; the centre moves to the teacher scores' batch mean."""
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("GradientTape training test runs under the TensorFlow backend")

    m = build_model(small_config(ssl_weight=1.0, ssl_method="dino", ssl_prototypes=8, ssl_teacher_momentum=0.9),
                    P, F, N_CLASSES)
    layers = {layer.name: layer for layer in m.layers}
    trainable = {id(v) for v in m.trainable_variables}
    teacher = [layer for name, layer in layers.items() if name.startswith("teacher_")]
    assert teacher and all(id(v) not in trainable for layer in teacher for v in layer.weights)
    pairs = [(s, t) for layer in teacher for s, t in zip(layers[layer.name[8:]].weights, layer.weights, strict=True)]
    assert all(np.array_equal(s.numpy(), t.numpy()) for s, t in pairs)

    features, mask = make_jets(N_REAL)
    optimizer = keras.optimizers.Adam(1e-2)
    for _ in range(2):
        before = [(s.numpy().copy(), t.numpy().copy()) for s, t in pairs]
        with tf.GradientTape() as tape:
            out = m({"features": features, "mask": mask}, training=True)
            loss = ops.mean(out["ssl_loss"])
        assert np.isfinite(float(loss)) and float(loss) > 0
        optimizer.apply(tape.gradient(loss, m.trainable_variables), m.trainable_variables)
        for (s_then, t_then), (_, t) in zip(before, pairs, strict=True):  # the update uses the pre-step student
            np.testing.assert_allclose(t.numpy(), 0.9 * t_then + 0.1 * s_then, rtol=1e-5, atol=1e-6)
    assert max(np.abs(s.numpy() - t.numpy()).max() for s, t in pairs) > 0  # the student moved away
    assert np.abs(layers["ssl_self_distillation"].center.numpy()).max() > 0

    inference = predict(m, features, mask)
    assert float(np.abs(np.asarray(m({"features": features, "mask": mask})["ssl_loss"])).max()) == 0
    path = tmp_path / "dino.keras"
    m.save(path)
    loaded = keras.saving.load_model(path)
    assert_outputs_close(inference, predict(loaded, features, mask), rtol=0, atol=0)
    # a loaded model has no teacher pairs: training it without bind_teacher fails in one line, not silently
    with pytest.raises(RuntimeError, match="ssl_self_distillation: no teacher to distil from"):
        loaded({"features": features, "mask": mask}, training=True)
