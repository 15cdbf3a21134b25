"""Per-jet losses of UCluster, in keras.ops (backend-agnostic): focal loss and deep k-means.

All functions return per-sample vectors of shape (B,), so that the caller decides how to reduce (mean over the
local batch, sum across workers, weights...).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops


def focal_loss(labels: Any, logits: Any, gamma: float = 2.0, target_kernel: Any = None) -> Any:
    """Focal loss ``-Σ_c q_c (1 - p_c)^γ log p_c`` from integer labels (B,) and logits (B, C); γ = 0 is cross
    entropy.

    The target distribution q is one-hot, or row ``label`` of ``target_kernel`` (C, C) when given: an ordinal
    target (neighbouring mass bins) can then share probability with its neighbours (see
    :func:`ordinal_kernel`). ``log p`` comes from log_softmax and ``1 - p`` from ``-expm1(log p)``, so neither
    overflows nor loses precision for confident predictions.
    """
    logits = ops.convert_to_tensor(logits)
    log_p = ops.log_softmax(logits, axis=-1)
    labels = ops.cast(labels, "int32")
    if target_kernel is None:
        q = ops.one_hot(labels, ops.shape(logits)[-1], dtype=log_p.dtype)
        log_p = ops.sum(q * log_p, axis=-1, keepdims=True)  # only the true class contributes
        q = ops.ones_like(log_p)
    else:
        q = ops.take(ops.cast(target_kernel, log_p.dtype), labels, axis=0)
    if isinstance(gamma, int | float) and gamma == 0:
        return -ops.sum(q * log_p, axis=-1)
    one_minus_p = ops.maximum(-ops.expm1(log_p), 0.0)
    return -ops.sum(q * ops.power(one_minus_p, ops.cast(gamma, log_p.dtype)) * log_p, axis=-1)


def ordinal_kernel(n_bins: int, sigma_bins: float) -> np.ndarray:
    """(n_bins, n_bins) target distributions for ordered bins: row i is a Gaussian of width ``sigma_bins``
    centred on bin i, normalised; ``sigma_bins = 0`` gives the identity (one-hot targets).

    With one-hot mass bins every wrong bin costs the same, so nothing ties the latent to the order of the
    masses; sharing probability with the neighbouring bins makes nearby masses nearby in the latent.
    """
    if sigma_bins <= 0:
        return np.eye(n_bins, dtype=np.float32)
    i = np.arange(n_bins, dtype=np.float64)
    k = np.exp(-0.5 * ((i[:, None] - i[None, :]) / sigma_bins) ** 2)
    return (k / k.sum(axis=1, keepdims=True)).astype(np.float32)


def soft_assignments(distances: Any, alpha: Any) -> Any:
    """Soft cluster assignments ``softmax_k(-α (d_k - min_j d_j))``, (B, K); hard (one-hot) as α grows.

    Subtracting the minimum does not change the softmax; it keeps the largest exponent at 0 for any α.
    """
    distances = ops.convert_to_tensor(distances)
    alpha = ops.cast(alpha, distances.dtype)
    shifted = distances - ops.min(distances, axis=-1, keepdims=True)
    return ops.softmax(-alpha * shifted, axis=-1)


def deep_kmeans_loss(distances: Any, alpha: Any) -> Any:
    """Deep k-means loss per jet ``Σ_k s_k d_k`` (B,); tends to ``min_k d_k`` for large α.

    The gradient flows through both the distances and the soft assignments, as in deep k-means.
    """
    distances = ops.convert_to_tensor(distances)
    return ops.sum(soft_assignments(distances, alpha) * distances, axis=-1)


def self_label_loss(distances: Any, alpha: Any, labels: Any) -> Any:
    """Cross entropy of the soft assignment ``softmax_k(-α d_k)`` against fixed cluster labels (B,); jets with
    label -1 (no label) give 0.

    Deep k-means re-assigns every jet to its nearest centroid at every step, so the partition follows the
    latent to its own k-means optimum; against fixed labels the optimum is the labelled partition itself, and
    only the unlabelled jets are placed by what the network learns from the labelled ones.
    """
    distances = ops.convert_to_tensor(distances)
    alpha = ops.cast(alpha, distances.dtype)
    labels = ops.cast(labels, "int32")
    log_s = ops.log_softmax(-alpha * distances, axis=-1)
    known = ops.cast(labels >= 0, distances.dtype)
    picked = ops.take_along_axis(log_s, ops.expand_dims(ops.maximum(labels, 0), -1), axis=-1)[:, 0]
    return -known * picked


def balance_loss(distances: Any, alpha: Any) -> Any:
    """KL divergence of the batch's mean soft assignment from the uniform one, ``Σ_k p̄_k log(K p̄_k)`` (scalar).

    Deep k-means alone is minimised as well by a clustering in which one cluster takes nearly every jet (measured:
    on 30 k jets per class two of three seeds emptied a cluster during the clustering phase and stayed there);
    this term, weighted by ``train.balance``, makes an emptying cluster cost something. It assumes clusters of
    similar size in a batch, so its weight should stay small where the classes are known to be unbalanced.
    """
    s = soft_assignments(distances, alpha)
    mean = ops.mean(s, axis=0)
    k = ops.cast(ops.shape(s)[-1], mean.dtype)
    return ops.sum(mean * ops.log(ops.maximum(mean * k, 1e-12)), axis=-1)


def sinkhorn_codes(scores: Any, epsilon: float = 0.05, iterations: int = 3) -> Any:
    """Soft codes (n, K) of n samples on K prototypes from their scores (n, K), without gradient: each row sums
    to 1 and each prototype receives n / K of the total (Sinkhorn-Knopp equipartition, as in SwAV).

    The equipartition is what stops a swapped-prediction objective from coding every jet on one prototype.
    """
    s = ops.stop_gradient(ops.convert_to_tensor(scores)) / epsilon
    q = ops.exp(s - ops.max(s))
    q = q / ops.maximum(ops.sum(q), 1e-30)
    n = ops.cast(ops.shape(q)[0], q.dtype)
    k = ops.cast(ops.shape(q)[1], q.dtype)
    for _ in range(iterations):
        q = q / ops.maximum(ops.sum(q, axis=0, keepdims=True), 1e-30) / k
        q = q / ops.maximum(ops.sum(q, axis=1, keepdims=True), 1e-30) / n
    return q * n


def _cross_view_loss(q_a: Any, q_b: Any, scores_a: Any, scores_b: Any, temperature: float) -> Any:
    """Per-jet ``-(Σ q_b log p_a + Σ q_a log p_b) / 2`` with p = softmax(scores / temperature): each view's
    prediction of the other view's target code."""
    log_p_a = ops.log_softmax(ops.convert_to_tensor(scores_a) / temperature, axis=-1)
    log_p_b = ops.log_softmax(ops.convert_to_tensor(scores_b) / temperature, axis=-1)
    return -0.5 * (ops.sum(q_b * log_p_a, axis=-1) + ops.sum(q_a * log_p_b, axis=-1))


def swapped_prediction_loss(scores_a: Any, scores_b: Any, temperature: float = 0.1) -> Any:
    """Per-jet SwAV loss (n,) of two views: each view's softmax(scores / temperature) predicts the Sinkhorn codes
    of the other view, ``-(Σ q_b log p_a + Σ q_a log p_b) / 2``."""
    return _cross_view_loss(sinkhorn_codes(scores_a), sinkhorn_codes(scores_b), scores_a, scores_b, temperature)


def self_distillation_loss(student: Any, teacher: Any, center: Any, temperature: float = 0.1,
                           teacher_temperature: float = 0.04) -> Any:
    """Per-jet DINO loss (n,) of two views stacked along the batch, ``(2n, K)`` scores each: each view's student
    softmax(scores / temperature) predicts the teacher's centred, sharpened code of the other view,
    softmax((scores - center) / teacher_temperature), taken without gradient."""
    q = ops.softmax(ops.stop_gradient((teacher - center) / teacher_temperature), axis=-1)
    q_a, q_b = ops.split(q, 2, axis=0)
    scores_a, scores_b = ops.split(student, 2, axis=0)
    return _cross_view_loss(q_a, q_b, scores_a, scores_b, temperature)
