"""ABCnet + deep k-means model (Keras 3, backend-agnostic) and its losses."""

from ucluster.model.abcnet import (
    ClusteringLayer,
    GAPLayer,
    KNNGraph,
    MaskedMaxPool,
    PointwiseDense,
    ZeroPadding,
    build_model,
    get_centroids,
    latent_model,
    set_centroids,
)
from ucluster.model.losses import deep_kmeans_loss, focal_loss, ordinal_kernel, soft_assignments

__all__ = [
    "ClusteringLayer",
    "GAPLayer",
    "KNNGraph",
    "MaskedMaxPool",
    "PointwiseDense",
    "ZeroPadding",
    "build_model",
    "deep_kmeans_loss",
    "focal_loss",
    "ordinal_kernel",
    "get_centroids",
    "latent_model",
    "set_centroids",
    "soft_assignments",
]
