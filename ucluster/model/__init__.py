"""ABCnet + deep k-means model (Keras 3, backend-agnostic) and its losses."""

from ucluster.model.abcnet import (
    ClusteringLayer,
    GAPLayer,
    InputScaling,
    KNNGraph,
    MaskedMaxPool,
    MaskedMeanPool,
    PointwiseDense,
    ZeroPadding,
    build_model,
    get_centroids,
    get_input_scaling,
    has_input_scaling,
    latent_model,
    set_centroids,
    set_input_scaling,
)
from ucluster.model.losses import balance_loss, deep_kmeans_loss, focal_loss, ordinal_kernel, soft_assignments

__all__ = [
    "ClusteringLayer",
    "GAPLayer",
    "InputScaling",
    "KNNGraph",
    "MaskedMaxPool",
    "MaskedMeanPool",
    "PointwiseDense",
    "ZeroPadding",
    "balance_loss",
    "build_model",
    "deep_kmeans_loss",
    "focal_loss",
    "ordinal_kernel",
    "get_centroids",
    "get_input_scaling",
    "has_input_scaling",
    "latent_model",
    "set_centroids",
    "set_input_scaling",
    "soft_assignments",
]
