"""Per-jet losses of UCluster, in keras.ops (backend-agnostic): focal loss and deep k-means.

All functions return per-sample vectors of shape (B,), so that the caller decides how to reduce (mean over the
local batch, sum across workers, weights...).
"""

from __future__ import annotations

from typing import Any

from keras import ops


def focal_loss(labels: Any, logits: Any, gamma: float = 2.0) -> Any:
    """Focal loss ``-(1 - p_t)^γ log p_t`` from integer labels (B,) and logits (B, C); γ = 0 is cross entropy.

    ``log p_t`` comes from log_softmax and ``1 - p_t`` from ``-expm1(log p_t)``, so neither overflows nor loses
    precision for confident predictions.
    """
    logits = ops.convert_to_tensor(logits)
    log_p = ops.log_softmax(logits, axis=-1)
    onehot = ops.one_hot(ops.cast(labels, "int32"), ops.shape(logits)[-1], dtype=log_p.dtype)
    log_pt = ops.sum(onehot * log_p, axis=-1)
    if isinstance(gamma, int | float) and gamma == 0:
        return -log_pt
    one_minus_pt = ops.maximum(-ops.expm1(log_pt), 0.0)
    return -ops.power(one_minus_pt, ops.cast(gamma, log_pt.dtype)) * log_pt


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
