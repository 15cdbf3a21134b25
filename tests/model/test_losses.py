"""Focal loss, soft assignments and deep k-means loss against numpy references."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from ucluster.model import balance_loss, deep_kmeans_loss, focal_loss, self_label_loss, soft_assignments


def np_(x) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(x))


def np_log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.fixture
def logits_labels() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.normal(scale=3.0, size=(32, 5)).astype("float32"), rng.integers(0, 5, size=32))


def test_focal_loss_is_cross_entropy_at_gamma_zero(logits_labels):
    logits, labels = logits_labels
    ce = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    np.testing.assert_allclose(np_(focal_loss(labels, logits, 0.0)), np_(ce), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_(focal_loss(labels, logits, ops.convert_to_tensor(0.0))), np_(ce), rtol=1e-5)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 5.0])
def test_focal_loss_matches_numpy(logits_labels, gamma):
    logits, labels = logits_labels
    log_pt = np_log_softmax(logits.astype("float64"))[np.arange(len(labels)), labels]
    expected = -((1 - np.exp(log_pt)) ** gamma) * log_pt
    got = np_(focal_loss(labels, logits, gamma))
    assert got.shape == (len(labels),)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_focal_loss_is_stable_for_extreme_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], "float32")
    got = np_(focal_loss(np.array([0, 0]), logits, 2.0))
    assert np.isfinite(got).all()
    assert got[0] == pytest.approx(0.0, abs=1e-6)  # confident and right: no loss
    assert got[1] == pytest.approx(2e4, rel=1e-5)  # confident and wrong: -log p_t, (1 - p_t)^γ = 1


def test_soft_assignments_sum_to_one_and_harden():
    d = np.random.default_rng(1).uniform(0, 10, size=(64, 4)).astype("float32")
    for alpha in (0.0, 0.5, 3.0):
        s = np_(soft_assignments(d, alpha))
        np.testing.assert_allclose(s.sum(-1), 1.0, rtol=1e-5)
        assert (s >= 0).all()
    np.testing.assert_allclose(np_(soft_assignments(d, 0.0)), 0.25, rtol=1e-6)
    hard = np_(soft_assignments(d, 1e4))
    np.testing.assert_allclose(hard, np.eye(4)[d.argmin(-1)], atol=1e-6)
    # a scalar tensor (e.g. a variable updated every epoch) works as well as a float
    alpha = keras.Variable(2.0, trainable=False)
    np.testing.assert_allclose(np_(soft_assignments(d, alpha)), np_(soft_assignments(d, 2.0)), rtol=1e-6)


def test_soft_assignments_match_numpy_and_survive_huge_distances():
    d = np.array([[1e6, 1e6 + 1.0, 1e6 + 3.0]], "float32")
    s = np_(soft_assignments(d, 1.0))
    e = np.exp(-np.array([0.0, 1.0, 3.0]))
    np.testing.assert_allclose(s[0], e / e.sum(), rtol=1e-5)


def test_deep_kmeans_loss_matches_numpy_and_tends_to_min_distance():
    rng = np.random.default_rng(2)
    d = rng.uniform(0, 5, size=(16, 3)).astype("float32")
    alpha = 1.5
    z = -alpha * (d - d.min(-1, keepdims=True))
    s = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    got = np_(deep_kmeans_loss(d, alpha))
    assert got.shape == (16,)
    np.testing.assert_allclose(got, (s * d).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(np_(deep_kmeans_loss(d, 1e4)), d.min(-1), rtol=1e-5)
    np.testing.assert_allclose(np_(deep_kmeans_loss(d, 0.0)), d.mean(-1), rtol=1e-5)


def test_self_label_loss_is_cross_entropy_of_the_soft_assignment_and_skips_unlabelled_jets():
    rng = np.random.default_rng(4)
    d = rng.uniform(0, 2, size=(12, 3)).astype("float32")
    labels = np.array([0, 1, 2, -1] * 3)
    alpha = 3.0
    log_s = np_log_softmax(-alpha * d)
    want = np.where(labels >= 0, -log_s[np.arange(12), np.maximum(labels, 0)], 0.0)
    got = np_(self_label_loss(d, alpha, labels))
    assert got.shape == (12,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert np.all(got[labels < 0] == 0) and np.all(got[labels >= 0] > 0)
    # a jet far nearer its labelled centroid than any other costs ~0; the same jet labelled elsewhere costs ~alpha * gap
    near = np.array([[0.0, 2.0, 2.0]], "float32")
    assert float(np_(self_label_loss(near, 10.0, np.array([0])))[0]) < 1e-6
    np.testing.assert_allclose(np_(self_label_loss(near, 10.0, np.array([1])))[0], 20.0, rtol=1e-4)


def test_balance_loss_is_kl_from_uniform_and_punishes_an_emptying_cluster():
    rng = np.random.default_rng(3)
    d = rng.uniform(0, 2, size=(64, 4)).astype("float32")
    alpha = 2.0
    z = -alpha * (d - d.min(-1, keepdims=True))
    mean = (np.exp(z) / np.exp(z).sum(-1, keepdims=True)).mean(0)
    np.testing.assert_allclose(float(np_(balance_loss(d, alpha))), (mean * np.log(4 * mean)).sum(), rtol=1e-5)
    # every jet nearest to centroid 0 (hard assignments): the largest value, log K
    collapsed = np.tile([0.0, 3.0, 3.0, 3.0], (64, 1)).astype("float32")
    np.testing.assert_allclose(float(np_(balance_loss(collapsed, 1e4))), np.log(4), rtol=1e-5)
    # the same number of jets nearest to each centroid: zero
    balanced = np.roll(np.eye(4, dtype="float32") * -3 + 3, 0, axis=0).repeat(16, axis=0)
    assert abs(float(np_(balance_loss(balanced, 1e4)))) < 1e-6


def test_ordinal_kernel_rows_are_distributions_peaked_on_their_bin():
    from ucluster.model import ordinal_kernel

    np.testing.assert_array_equal(ordinal_kernel(5, 0.0), np.eye(5))
    k = ordinal_kernel(20, 1.5)
    np.testing.assert_allclose(k.sum(axis=1), 1.0, rtol=1e-6)
    assert (k.argmax(axis=1) == np.arange(20)).all()
    assert k[10, 11] > k[10, 12] > k[10, 15] > 0 and k[10, 9] == pytest.approx(k[10, 11])


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_focal_loss_with_target_kernel_matches_numpy(logits_labels, gamma):
    from ucluster.model import ordinal_kernel

    logits, labels = logits_labels
    np.testing.assert_allclose(np_(focal_loss(labels, logits, gamma, np.eye(5, dtype="float32"))),
                               np_(focal_loss(labels, logits, gamma)), rtol=1e-5, atol=1e-6)
    kernel = ordinal_kernel(5, 1.0)
    log_p = np_log_softmax(logits.astype("float64"))
    expected = -(kernel[labels] * (1 - np.exp(log_p)) ** gamma * log_p).sum(axis=1)
    np.testing.assert_allclose(np_(focal_loss(labels, logits, gamma, kernel)), expected, rtol=1e-4, atol=1e-6)


def test_sinkhorn_codes_are_distributions_with_equal_prototype_shares():
    from ucluster.model import sinkhorn_codes

    rng = np.random.default_rng(3)
    scores = rng.uniform(-1, 1, size=(64, 4)).astype("float32")
    scores[:, 0] += 0.8  # every sample prefers prototype 0: the codes must still share the samples out
    q = np_(sinkhorn_codes(scores, epsilon=0.05, iterations=20))
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-4)
    np.testing.assert_allclose(q.sum(axis=0), 64 / 4, rtol=2e-2)
    assert (q.argmax(axis=1) == 0).mean() < 0.5  # not every sample coded on the preferred prototype


def test_swapped_prediction_loss_is_low_when_the_views_agree():
    from ucluster.model import swapped_prediction_loss

    rng = np.random.default_rng(4)
    protos = np.eye(4, dtype="float32")
    own = rng.integers(0, 4, size=64)
    agree = protos[own] * 0.9
    disagree = protos[(own + 1) % 4] * 0.9
    same = float(np.mean(np_(swapped_prediction_loss(agree, agree, 0.1))))
    swapped = float(np.mean(np_(swapped_prediction_loss(agree, disagree, 0.1))))
    assert np.isfinite(same) and same < 0.1 < swapped
